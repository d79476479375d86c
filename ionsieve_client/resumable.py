"""Resumable uploads (tus 1.0) over http.client: one file in parts, each with a SHA-1 the
server checks (tus checksum extension); a cut connection, a server restart or a new run of the
script resumes where the server stopped (it keeps what it checked). The whole file's CRC-32,
kept part by part, goes with the request that uses the upload, so the server checks the
assembled file too. Standard library only, Python 3.9+."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import json
import os
import time
import urllib.parse
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

DEFAULT_PART = 64 * 1024 * 1024  # 64 MiB: few requests per GB, little resent after a cut
TUS = "1.0.0"


_CRC_POLY = 0xEDB88320  # zlib's CRC-32, bit-reflected


def _mult_mod_p(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order), as zlib's multmodp."""
    m, p = 1 << 31, 0
    while a:
        if a & m:
            p ^= b
            a ^= m
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B) (zlib's crc32_combine, which Python's
    zlib does not offer): a part checked by its CRC-32 extends the running CRC-32 without hashing
    its bytes twice (here and on the server, webapp/ingestion/resumable.py)."""
    return _mult_mod_p(_x_to_the_bytes(len2), crc1) ^ crc2


@functools.lru_cache(maxsize=64)
def _x_to_the_bytes(length: int) -> int:
    """x^(8 length) modulo the polynomial (cached: parts mostly have one size)."""
    x, p, n = 1 << 30, 1 << 31, length * 8  # x^1, x^0
    while n:
        if n & 1:
            p = _mult_mod_p(x, p)
        n >>= 1
        x = _mult_mod_p(x, x)
    return p


class UploadFailed(RuntimeError):
    """The server refused the upload (wrong project, too large, expired...): `status`, `detail`."""

    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail
        super().__init__(f"{status}: {detail}")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def file_crc32(path: Path, end: int | None = None, block: int = 16 * 1024 * 1024) -> int:
    """CRC-32 of the first `end` bytes (all by default): the value the server must have."""
    crc, left = 0, end if end is not None else os.path.getsize(path)
    with open(path, "rb") as f:
        while left > 0:
            data = f.read(min(block, left))
            if not data:
                break
            crc = zlib.crc32(data, crc)
            left -= len(data)
    return crc


class ResumableUpload:
    """Send `path` to the server at `base` for project `slug`.

    `state` is a JSON file remembering unfinished uploads (so that a second run of the same
    script resumes instead of starting again); `progress(sent, total, rate_bytes_per_s)` is
    called after each part."""

    def __init__(
        self,
        base: str,
        token: str,
        slug: str,
        path: Path,
        *,
        part_size: int = DEFAULT_PART,
        state: Path | None = None,
        progress: Callable[[int, int, float], None] | None = None,
        retries: int = 8,
        timeout: float = 120.0,
        checksum: str = "sha1",
    ):
        self.base, self.token, self.slug, self.path = base.rstrip("/"), token, slug, Path(path)
        self.part_size, self.retries, self.timeout, self.progress = part_size, retries, timeout, progress
        if checksum not in ("sha1", "crc32"):
            raise ValueError("checksum must be 'sha1' or 'crc32'")
        self.checksum = checksum  # each part's Upload-Checksum: SHA-1 (tus's default) or CRC-32 (cheaper)
        self.state = Path(state) if state else Path.home() / ".cache" / "ionsieve" / "uploads.json"
        self.size = os.path.getsize(self.path)
        self.url: str | None = None
        self.bytes_sent = 0  # every byte put on the wire in parts, resent ones included
        self._crc_at: dict[int, int] = {0: 0}  # offset -> CRC-32 of the bytes before it
        self._conn: http.client.HTTPConnection | None = None
        u = urllib.parse.urlsplit(self.base)
        self._scheme, self._netloc = u.scheme, u.netloc

    # ------------------------------------------------------------------ http
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._netloc, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> http.client.HTTPResponse:
        h = {"Authorization": f"Token {self.token}", "Tus-Resumable": TUS, **headers}
        path = urllib.parse.urlsplit(url).path if url.startswith("http") else url
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            resp.read_body = resp.read()  # type: ignore[attr-defined]  # drain: the connection is reused
            return resp
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    @staticmethod
    def _detail(resp: http.client.HTTPResponse) -> str:
        try:
            return json.loads(resp.read_body).get("detail", "")  # type: ignore[attr-defined]
        except (ValueError, AttributeError):
            return resp.reason

    # ------------------------------------------------------------------ state file
    def _key(self) -> str:
        st = self.path.stat()
        who = hashlib.sha256(self.token.encode()).hexdigest()[:12]  # another user never resumes this one
        return f"{self.base}|{who}|{self.slug}|{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def _load_state(self) -> dict[str, str]:
        try:
            return json.loads(self.state.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, url: str | None) -> None:
        data = self._load_state()
        if url:
            data[self._key()] = url
        else:
            data.pop(self._key(), None)
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state)

    # ------------------------------------------------------------------ protocol
    def create(self) -> str:
        resp = self._request(
            "POST",
            "/api/uploads/",
            {
                "Upload-Length": str(self.size),
                "Content-Length": "0",
                "Upload-Metadata": f"filename {_b64(self.path.name)},project {_b64(self.slug)}",
            },
        )
        if resp.status != 201:
            raise UploadFailed(resp.status, self._detail(resp))
        self.url = resp.getheader("Location")
        self._save_state(self.url)
        return self.url  # type: ignore[return-value]

    def offset(self) -> int:
        """Where the server says to resume (tus HEAD)."""
        resp = self._request("HEAD", self.url, {})  # type: ignore[arg-type]
        if resp.status != 200:
            raise UploadFailed(resp.status, resp.reason)
        return int(resp.getheader("Upload-Offset", "0"))

    def _digest(self, data: bytes) -> bytes:
        if self.checksum == "crc32":
            return zlib.crc32(data).to_bytes(4, "big")
        return hashlib.sha1(data).digest()

    def send_part(self, offset: int, data: bytes, digest: bytes | None = None) -> int:
        """PATCH one part with its checksum (`digest`, in `self.checksum`'s algorithm,
        computed here if not given); returns the server's new offset."""
        checksum = base64.b64encode(digest if digest is not None else self._digest(data)).decode()
        self.bytes_sent += len(data)
        resp = self._request(
            "PATCH",
            self.url,
            {  # type: ignore[arg-type]
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(data)),
                "Upload-Checksum": f"{self.checksum} {checksum}",
            },
            body=data,
        )
        if resp.status != 204:
            raise UploadFailed(resp.status, self._detail(resp))
        return int(resp.getheader("Upload-Offset", "0"))

    def _resume_or_create(self) -> int:
        self.url = self.url or self._load_state().get(self._key())
        if self.url:
            try:
                return self.offset()
            except UploadFailed as exc:
                if exc.status not in (403, 404, 410):
                    raise
                self._save_state(None)  # someone else's, finished or expired: start a new one
        self.create()
        return 0

    def _prepared(self, fd: int, at: int, crc_before: int) -> tuple[bytes, bytes, int]:
        """The part starting at `at`: (bytes, their checksum, the file's CRC-32 up to its end).
        hashlib and zlib release the GIL, so this runs beside the sending of the previous part."""
        data = os.pread(fd, min(self.part_size, self.size - at), at)
        if self.checksum == "crc32":  # hashed once: the running CRC-32 is combined from the part's
            crc = zlib.crc32(data)
            return data, crc.to_bytes(4, "big"), crc32_combine(crc_before, crc, len(data))
        return data, self._digest(data), zlib.crc32(data, crc_before)

    def _crc_before(self, offset: int) -> int:
        crc = self._crc_at.get(offset)
        if crc is None:  # resumed in a new run: the CRC of what the server has, read here
            crc = self._crc_at[offset] = file_crc32(self.path, offset)
        return crc

    def run(self) -> dict[str, Any]:
        """Upload (or finish uploading) the file; returns {'id': upload id, 'crc32': hex}."""
        attempt, start, started_at = 0, None, time.monotonic()
        offset = -1
        fd = os.open(self.path, os.O_RDONLY)
        # The next part is read and hashed while this one is on the wire.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ionsieve-read")
        ahead: tuple[int, Future] | None = None
        try:
            while True:
                try:
                    if offset < 0:
                        offset = self._resume_or_create()
                    if start is None:
                        start = offset
                    while offset < self.size:
                        if ahead and ahead[0] == offset:
                            data, digest, crc = ahead[1].result()
                        else:
                            data, digest, crc = self._prepared(fd, offset, self._crc_before(offset))
                        nxt = offset + len(data)
                        ahead = (nxt, pool.submit(self._prepared, fd, nxt, crc)) if nxt < self.size else None
                        new = self.send_part(offset, data, digest)
                        if new != nxt:
                            raise UploadFailed(409, f"the server stopped at byte {new}, not {nxt}")
                        self._crc_at = {new: crc}
                        offset, attempt = new, 0
                        if self.progress:
                            elapsed = max(time.monotonic() - started_at, 1e-6)
                            self.progress(offset, self.size, (offset - start) / elapsed)
                    break
                except (OSError, http.client.HTTPException, UploadFailed) as exc:
                    retriable = (
                        not isinstance(exc, UploadFailed)
                        or exc.status in (409, 423, 460)
                        or exc.status >= 500
                    )
                    attempt += 1
                    if not retriable or attempt > self.retries:
                        raise
                    time.sleep(min(0.2 * 2**attempt, 10))
                    offset = -1  # ask the server where it stands
        finally:
            pool.shutdown(wait=True)
            os.close(fd)
        self._save_state(None)
        self.close()
        upload_id = self.url.rstrip("/").rsplit("/", 1)[-1]  # type: ignore[union-attr]
        crc = self._crc_at.get(self.size)
        if crc is None:
            crc = file_crc32(self.path)
        return {"id": upload_id, "crc32": f"{crc:08x}", "bytes_sent": self.bytes_sent}
