"""Reading a resumable upload's part from the request body.

Under gunicorn the part is read straight from the socket (`recv_into` a fresh buffer): gunicorn's
own body readers hand the bytes through BytesIO buffers in 1 MiB steps and copy each byte about
six times, ~0.5 s of CPU per GB, a tenth of what an upload costs the server and its client on a
two-core machine. Anywhere else (Django's test client, runserver, another WSGI server, a gunicorn
whose readers are not the ones this was written for), the standard WSGI stream is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable


class BodyReader:
    """`read(n)` returns up to n bytes of the body (fewer only at its end or when the client went
    away); `close()` hands back to gunicorn whatever was taken from its buffer and not read, so a
    kept-alive connection finds the next request where it expects it."""

    def __init__(self, request):
        self._request = request
        self._fast = _gunicorn_parts(request)
        self._held = memoryview(b"")
        if self._fast is not None:
            _, reader = self._fast
            held = reader.unreader.take_buffered()  # what came in with the headers
            if len(held) > reader.length:  # a pipelined next request: not ours
                reader.unreader.unread(held[reader.length :])
                held = held[: reader.length]
            reader.length -= len(held)
            self._held = memoryview(held)
            request._read_started = True

    def read(self, n: int) -> bytes | bytearray:
        if self._fast is None:
            return self._request.read(n)
        sock, reader = self._fast
        if len(self._held):
            out, self._held = bytes(self._held[:n]), self._held[n:]
            return out
        n = min(n, reader.length)
        if n <= 0:
            return b""
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        try:
            while got < n:
                k = sock.recv_into(view[got:], n - got)
                if not k:
                    break
                got += k
        finally:
            reader.length -= got
        return buf if got == n else buf[:got]

    def close(self) -> None:
        if self._fast is not None and len(self._held):
            _, reader = self._fast
            reader.unreader.unread(bytes(self._held))
            reader.length += len(self._held)
            self._held = memoryview(b"")


def _gunicorn_parts(request) -> tuple[object, object] | None:
    """(socket, gunicorn's LengthReader) when the body can be read from the socket safely: gunicorn's
    plain socket reader, nothing of the body read yet; else None."""
    if os.environ.get("IONSIEVE_UPLOAD_SOCKET_READ", "1") == "0":
        return None
    env = request.META
    sock, body = env.get("gunicorn.socket"), env.get("wsgi.input")
    if sock is None or body is None or getattr(request, "_read_started", True):
        return None
    try:
        from gunicorn.http.body import Body, LengthReader
        from gunicorn.http.unreader import SocketUnreader
    except ImportError:
        return None
    reader = getattr(body, "reader", None)
    ok = (
        type(body) is Body
        and type(reader) is LengthReader
        and type(reader.unreader) is SocketUnreader
        and reader.unreader.sock is sock
        and hasattr(reader.unreader, "take_buffered")
        and body.buf.getbuffer().nbytes == 0
    )
    return (sock, reader) if ok else None


def body_reader(request) -> tuple[Callable[[int], bytes | bytearray], Callable[[], None]]:
    """(read, close) for a request's body; see BodyReader."""
    r = BodyReader(request)
    return r.read, r.close
