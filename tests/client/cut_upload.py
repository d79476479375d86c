"""A resumable upload whose connection dies half-way through one part: the client test and
bench/bench_upload.py both cut an upload this way, then resume it."""

from __future__ import annotations

import base64
import socket
import urllib.parse

from ionsieve_client import ResumableUpload


class CutOnce(ResumableUpload):
    """Sends half of part `cut_at` over a raw socket, then the connection dies (after the
    server has answered the cut, so that a resumed run never races the server's handler of it)."""

    cut_at = 2

    def send_part(self, offset: int, data: bytes, digest: bytes | None = None) -> int:
        if offset // self.part_size == self.cut_at:
            u = urllib.parse.urlsplit(self.url)
            b64 = base64.b64encode(digest or self._digest(data)).decode()
            with socket.create_connection((u.hostname, u.port)) as s:
                s.sendall(
                    (
                        f"PATCH {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Token {self.token}\r\n"
                        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nUpload-Checksum: {self.checksum} {b64}\r\n"
                        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
                    ).encode()
                )
                s.sendall(memoryview(data)[: len(data) // 2])
                # The cut, then the server's answer to it: once that has come, the server has let
                # go of the upload. A run resumed before that found the part's lock still held (a
                # 423, refused after its body was sent) and sent that part twice, under load.
                s.shutdown(socket.SHUT_WR)
                s.settimeout(30)
                while s.recv(65536):
                    pass
            self.bytes_sent += len(data) // 2
            raise ConnectionResetError("connection cut on purpose")
        return super().send_part(offset, data, digest)
