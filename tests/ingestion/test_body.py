"""A resumable part read straight from gunicorn's socket: the same bytes as gunicorn's own readers
give, and the connection left where gunicorn expects it (the next request intact)."""

from __future__ import annotations

import socket
import threading

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from webapp.ingestion.body import BodyReader


class FakeRequest:
    def __init__(self, sock, body):
        self.META = {"gunicorn.socket": sock, "wsgi.input": body}
        self._read_started = False

    def read(self, n):  # the standard stream (used when the fast path does not apply)
        self._read_started = True
        return self.META["wsgi.input"].read(n)


def connection(payload: bytes, length: int, already: int):
    """gunicorn's reader of a body of `length` bytes whose first `already` bytes (and anything after
    the body) gunicorn received together with the headers."""
    a, b = socket.socketpair()
    unreader = SocketUnreader(b)
    unreader.unread(payload[:already])
    threading.Thread(target=lambda: (a.sendall(payload[already:]), a.close()), daemon=True).start()
    return b, unreader, Body(LengthReader(unreader, length))


@pytest.mark.parametrize("already", [0, 100, 5000, 1_024_010])  # the last: part of the next request too
def test_it_reads_the_body_from_the_socket_and_leaves_the_next_request(already):
    body_bytes = bytes(range(256)) * 4000  # 1,024,000 bytes
    following = b"GET /next HTTP/1.1\r\n\r\n"
    sock, unreader, body = connection(body_bytes + following, len(body_bytes), already)
    request = FakeRequest(sock, body)
    reader = BodyReader(request)
    assert reader._fast is not None
    got = bytearray()
    while block := reader.read(300_000):
        got += block
    reader.close()
    assert bytes(got) == body_bytes
    assert body.read(10) == b""  # gunicorn sees the body as read
    assert unreader.read(len(following)) == following  # and finds the next request
    sock.close()


def test_it_hands_back_what_it_took_and_did_not_read():
    body_bytes = bytes(range(256)) * 100
    sock, unreader, body = connection(body_bytes, len(body_bytes), 8000)
    reader = BodyReader(FakeRequest(sock, body))
    assert bytes(reader.read(1000)) == body_bytes[:1000]
    reader.close()  # stopped early (a refused part): gunicorn drains the rest itself
    assert body.read(len(body_bytes)) == body_bytes[1000:]
    sock.close()


def test_it_reads_the_standard_stream_elsewhere():
    class Plain:
        META: dict = {}
        _read_started = False

        def read(self, n):
            return b"x" * n

    reader = BodyReader(Plain())
    assert reader._fast is None and reader.read(5) == b"xxxxx"
