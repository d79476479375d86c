"""Resumable uploads (tus 1.0 core + creation, checksum, termination and expiration).

A file is sent in parts; each part may carry a checksum (tus `Upload-Checksum`) and is kept
only if it matches. The server keeps a running CRC-32 of the bytes it has, so the assembled
file is checked against the client's whole-file CRC-32 without reading it again. Uploads
belong to the user and project that started them; they are invisible until a dataset or an
import takes them, and are deleted when they expire (`cleanup`).

Why tus and not a home-made protocol: it is an open specification with maintained clients
(tus-js-client in the browser, tuspy and others for scripts), resumption after a reload
comes for free in tus-js-client, and its checksum extension says how to refuse a damaged part.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import logging
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from ionsieve_client.resumable import crc32_combine
from webapp.datasets.models import Upload

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,checksum,termination,expiration"
ALGORITHMS = ("sha1", "sha256", "md5", "crc32")
READ_BLOCK = 4 * 1024 * 1024


class UploadRefused(Exception):
    """A request the server cannot accept, worded for a biologist; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def expiry_seconds() -> int:
    return int(getattr(settings, "IONSIEVE_UPLOAD_EXPIRY_SECONDS", 24 * 3600))


def uploads_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "uploads"


# ---------------------------------------------------------------------- headers
def parse_metadata(header: str | None) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64(value)` pairs."""
    out: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode() if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise UploadRefused(
                f"the upload's description (Upload-Metadata) has an unreadable value for '{key}'"
            ) from None
    return out


def parse_int_header(value: str | None, name: str) -> int:
    if value is None or not value.strip().isdigit():
        raise UploadRefused(f"the {name} header must be a whole number of bytes")
    return int(value)


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, header: str | None) -> Checksum | None:
        if not header:
            return None
        algorithm, _, b64 = header.strip().partition(" ")
        if algorithm not in ALGORITHMS:
            raise UploadRefused(
                f"checksum '{algorithm}' is not supported; use one of {', '.join(ALGORITHMS)}"
            )
        try:
            digest = base64.b64decode(b64.strip(), validate=True)
        except binascii.Error:
            raise UploadRefused("the part's checksum is not valid base64") from None
        return cls(algorithm, digest)

    def hasher(self) -> _Hasher:
        return _Crc32() if self.algorithm == "crc32" else _Hash(hashlib.new(self.algorithm))


class _Hash:
    def __init__(self, h):
        self.h = h

    def update(self, data) -> None:
        self.h.update(data)

    def digest(self) -> bytes:
        return self.h.digest()


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


_Hasher = _Hash | _Crc32


def expires_header(upload: Upload) -> str:
    from django.utils.http import http_date

    return http_date(upload.expires_at.timestamp())


# ---------------------------------------------------------------------- operations
def create(user, project, *, length: int, filename: str, crc32: str | None = None) -> Upload:
    """A new upload; `crc32` (optional, 8 hex digits, Upload-Metadata `crc32`) is the whole file's
    CRC-32, checked when the last part arrives."""
    expected = parse_crc32(crc32)
    limit = settings.IONSIEVE_MAX_UPLOAD_BYTES
    if length > limit:
        raise UploadRefused(
            f"'{filename}' is {length / 1e9:.1f} GB, above this server's limit of {limit / 1e9:.1f} GB",
            status=413,
        )
    if not filename or len(filename) > 255 or "/" in filename or "\\" in filename or "\x00" in filename:
        raise UploadRefused(
            "give the file's name (without folders, at most 255 characters) in the upload's "
            "description (Upload-Metadata: filename)"
        )
    upload = Upload.objects.create(
        user=user,
        project=project,
        filename=filename,
        length=length,
        expires_at=timezone.now() + timedelta(seconds=expiry_seconds()),
    )
    upload.path.parent.mkdir(parents=True, exist_ok=True)
    upload.path.touch()
    if expected is not None:
        # Beside the part file, not in the table: no migration for an optional check.
        _expected_path(upload).write_text(f"{expected:08x}")
    return upload


def _expected_path(upload: Upload) -> Path:
    return upload.path.with_suffix(".crc32")


def _check_whole(upload: Upload) -> None:
    """The assembled file against the CRC-32 declared when the upload started; a mismatch deletes
    the upload (each part matched its own checksum, so the file changed while it was sent)."""
    try:
        expected = int(_expected_path(upload).read_text().strip(), 16)
    except (FileNotFoundError, ValueError):
        return
    if expected != upload.crc32:
        discard(upload)
        raise UploadRefused(
            f"'{upload.filename}' arrived complete but is not the file announced when the upload started "
            f"(CRC-32 {upload.crc32:08x} received, {expected:08x} announced): did the file change on "
            "your computer while it was sent? The upload was deleted: send the file again",
            460,
        )


def get(user, upload_id) -> Upload:
    """The user's own upload, or a clear refusal (someone else's, gone, expired)."""
    upload = Upload.objects.select_related("project").filter(pk=upload_id).first()
    if upload is None:
        raise UploadRefused(
            "this upload does not exist (finished, cancelled or expired): start it again", 404
        )
    if upload.user_id != getattr(user, "pk", None):
        if upload.project.role_of(user) is None:  # outside the project: as if it did not exist
            raise UploadRefused(
                "this upload does not exist (finished, cancelled or expired): start it again", 404
            )
        raise UploadRefused(
            "this upload was started by another user: only they can resume it; start your own", 403
        )
    if upload.expires_at <= timezone.now():
        discard(upload)
        raise UploadRefused(
            f"the upload of '{upload.filename}' expired after {expiry_seconds() // 3600} h "
            "without progress and was deleted: start it again",
            410,
        )
    return upload


@contextlib.contextmanager
def _locked(upload: Upload) -> Iterator[object]:
    """One transfer per upload at a time (a file lock works on SQLite and PostgreSQL alike, and
    holds no database transaction open while megabytes arrive)."""
    try:
        f = open(upload.path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        upload.delete()
        raise UploadRefused(
            "the received part of this file is gone from the server: start the upload again", 410
        ) from None
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UploadRefused(
                f"another transfer of '{upload.filename}' is in progress: wait for it, "
                "or close the other window",
                423,
            ) from None
        yield f
    finally:
        f.close()


class _Sink:
    """One part's blocks, written to the file and hashed (the upload's running CRC-32, the part's
    checksum) by two helper threads while the next block is read from the socket: file writes,
    zlib and hashlib release the GIL, so the three overlap instead of adding up (writing to the
    page cache was the slowest step). At most one block waits for each thread: memory stays
    bounded."""

    def __init__(self, f, crc: int, checksum: Checksum | None):
        self.f = f
        self.crc = crc
        self.part = checksum.hasher() if checksum else None
        # A part checked by CRC-32 is hashed once: the running CRC-32 is combined from it at the end.
        self._combine = isinstance(self.part, _Crc32)
        self._start, self._length = crc, 0
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ionsieve-upload-hash")
        self._writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ionsieve-upload-write")
        self._pending: list[Future] = []

    def _hash(self, block: bytes) -> None:
        if not self._combine:
            self.crc = zlib.crc32(block, self.crc)
        if self.part is not None:
            self.part.update(block)
        self._length += len(block)

    def _write(self, block: bytes) -> None:
        self.f.write(block)

    def put(self, block: bytes) -> None:
        self.drain()
        self._pending = [self._hashing.submit(self._hash, block), self._writing.submit(self._write, block)]

    def drain(self) -> None:
        """Wait for the blocks given so far; raises what writing them raised (a full disk)."""
        pending, self._pending = self._pending, []
        for done in pending:
            done.result()

    def close(self) -> None:
        """Stop the threads once their work is done: nothing is written after this returns (the
        caller may truncate the file). Errors were reported by drain(), or are moot."""
        self._hashing.shutdown(wait=True)
        self._writing.shutdown(wait=True)
        if self._combine:
            self.crc = crc32_combine(self._start, self.part.value, self._length)


def _receive(upload: Upload, read: Callable[[int], bytes], want: int, sink: _Sink) -> int:
    """Copy up to `want` bytes from the request into the file at the upload's offset; returns how
    many arrived (fewer when the connection was cut)."""
    room = upload.length - upload.offset
    received = 0
    try:
        while received < want:
            try:
                block = read(min(READ_BLOCK, want - received))
            except OSError as exc:  # the client went away mid-part
                log.info("upload %s: part cut after %s bytes (%s)", upload.pk, received, exc)
                break
            if not block:
                break
            if received + len(block) > room:
                raise UploadRefused(
                    f"this part would take '{upload.filename}' past its declared size of "
                    f"{upload.length:,} bytes",
                    413,
                )
            sink.put(block)
            received += len(block)
        sink.drain()
    except OSError as exc:  # writing failed (a full disk): nothing of this part is kept
        raise UploadRefused(
            f"the server could not store this part of '{upload.filename}' ({exc.strerror or exc}): "
            "try again later",
            507,
        ) from None
    return received


def _check_part(upload: Upload, checksum: Checksum | None, sink: _Sink, received: int, want: int) -> None:
    """Refuse a part that is incomplete or damaged (only parts with a checksum are all or nothing)."""
    if checksum is None:
        return
    if received < want:  # the connection was cut (a part with a checksum has a Content-Length)
        raise UploadRefused(
            f"this part of '{upload.filename}' arrived incomplete ({received:,} of "
            f"{want:,} bytes) and was discarded: send it again",
            400,
        )
    if sink.part.digest() != checksum.digest:
        raise UploadRefused(
            f"this part of '{upload.filename}' arrived damaged (its {checksum.algorithm} "
            "checksum does not match) and was discarded: send it again",
            460,
        )


def _check_start(upload: Upload, offset: int, content_length: int | None, checksum: Checksum | None) -> None:
    if offset != upload.offset:
        raise UploadRefused(
            f"this part of '{upload.filename}' starts at byte {offset:,} but the server holds "
            f"{upload.offset:,} bytes: parts must be sent in order and once. Ask the server where to "
            "resume (HEAD) and continue from there",
            409,
        )
    if content_length is not None and content_length > upload.length - upload.offset:
        raise UploadRefused(
            f"this part would take '{upload.filename}' past its declared size of {upload.length:,} bytes",
            413,
        )
    if checksum is not None and content_length is None:
        raise UploadRefused("a part with a checksum needs a Content-Length")


def append(
    upload: Upload,
    offset: int,
    read: Callable[[int], bytes],
    content_length: int | None,
    checksum: Checksum | None,
) -> Upload:
    """Write one part at `offset`. With a checksum, the part is kept only whole and matching;
    without one, whatever arrived is kept (tus core), so a cut connection loses nothing. After the
    last part, the whole file is checked against the CRC-32 declared when it started, if any."""
    with _locked(upload) as f:
        upload.refresh_from_db()
        # The database is the truth: bytes written after the last recorded offset (a server killed
        # between the write and the update) are cut off.
        f.truncate(upload.offset)
        _check_start(upload, offset, content_length, checksum)
        want = content_length if content_length is not None else upload.length - upload.offset + 1
        f.seek(upload.offset)
        sink = _Sink(f, upload.crc32, checksum)
        try:
            try:
                received = _receive(upload, read, want, sink)
            finally:
                sink.close()  # every write done: a truncate below cannot be overtaken
            _check_part(upload, checksum, sink, received, want)
            f.flush()
        except UploadRefused:
            f.truncate(upload.offset)
            raise
        _record(upload, f, received, sink.crc)
    upload.refresh_from_db()
    if upload.complete:
        _check_whole(upload)
    return upload


def _record(upload: Upload, f, received: int, crc: int) -> None:
    now = timezone.now()
    # Conditional on the old offset: a second writer that slipped past the lock cannot both win.
    updated = Upload.objects.filter(pk=upload.pk, offset=upload.offset).update(
        offset=upload.offset + received,
        crc32=crc,
        updated_at=now,
        expires_at=now + timedelta(seconds=expiry_seconds()),
    )
    if not updated:
        f.truncate(upload.offset)
        raise UploadRefused("another transfer changed this upload at the same time: ask where to resume", 409)


def discard(upload: Upload) -> None:
    upload.path.unlink(missing_ok=True)
    _expected_path(upload).unlink(missing_ok=True)
    upload.delete()


# ---------------------------------------------------------------------- taking a finished upload
@dataclass
class ReceivedFile:
    """A finished upload handed to the dataset and import services like an uploaded file:
    `storage.store_file` moves it into place (no copy)."""

    name: str
    size: int
    path: Path

    def temporary_file_path(self) -> str:
        return str(self.path)

    def chunks(self, size: int = READ_BLOCK) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while block := f.read(size):
                yield block


def parse_crc32(value: str | None) -> int | None:
    """A whole-file CRC-32 as 8 hex digits (what the clients send), or None."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower().removeprefix("0x")
    if len(text) > 8 or not all(c in "0123456789abcdef" for c in text):
        raise UploadRefused(f"'{value}' is not a CRC-32 (8 hexadecimal digits)")
    return int(text, 16)


def take(user, project, upload_id, *, role: str, crc32: str | None = None) -> tuple[Upload, ReceivedFile]:
    """Check that an upload is this user's, for this project, complete and intact; return it as a
    file to store. `role` names it in messages ("the .ibd file")."""
    try:
        upload = get(user, upload_id)
    except UploadRefused as exc:
        raise UploadRefused(f"{role}: {exc}", exc.status) from None
    if upload.project_id != project.pk:
        raise UploadRefused(f"{role} was uploaded for another project ({upload.project.name})")
    if not upload.complete:
        raise UploadRefused(
            f"{role} '{upload.filename}' is not complete yet: the server has "
            f"{upload.offset:,} of {upload.length:,} bytes; resume the upload"
        )
    try:
        on_disk = upload.path.stat().st_size
    except FileNotFoundError:
        on_disk = -1
    if on_disk != upload.length:
        raise UploadRefused(
            f"{role} '{upload.filename}' is damaged on the server ({on_disk:,} bytes stored, "
            f"{upload.length:,} declared): upload it again"
        )
    try:
        _check_whole(upload)
    except UploadRefused as exc:
        raise UploadRefused(f"{role}: {exc}", exc.status) from None
    expected = parse_crc32(crc32)
    if expected is not None and expected != upload.crc32:
        raise UploadRefused(
            f"{role} '{upload.filename}' does not match the file you sent (CRC-32 "
            f"{upload.crc32:08x} received, {expected:08x} expected): upload it again"
        )
    return upload, ReceivedFile(name=upload.filename, size=upload.length, path=upload.path)


def check_imzml_pair(imzml: ReceivedFile, ibd: ReceivedFile) -> None:
    """Read the .imzML's spectrum index against the .ibd (UUID, sizes, offsets: what ingestion reads
    first) before a dataset is made of them, so a mismatched pair is refused at once and never
    shows as a failed dataset. ~0.5 s per 100,000 spectra."""
    from ionsieve_core.msi import MSIError, read_metadata

    try:
        read_metadata(imzml.path, ibd.path)
    except MSIError as exc:
        raise UploadRefused(
            f"'{imzml.name}' and '{ibd.name}' cannot be read together: {str(exc).rstrip('.')}. No dataset was made; "
            "your uploads are kept until they expire, so you can send the matching file"
        ) from None


def consumed(uploads: list[Upload]) -> None:
    """Forget uploads whose files a dataset or import now owns (moved away, or still here)."""
    for upload in uploads:
        discard(upload)


# ---------------------------------------------------------------------- cleanup
def cleanup(now=None) -> tuple[int, int]:
    """Delete expired uploads and stray files; returns (uploads removed, bytes freed)."""
    now = now or timezone.now()
    removed = freed = 0
    for upload in Upload.objects.filter(expires_at__lte=now):
        with contextlib.suppress(FileNotFoundError):
            freed += upload.path.stat().st_size
        discard(upload)
        removed += 1
    folder = uploads_dir()
    if folder.is_dir():
        known = {str(pk) for pk in Upload.objects.values_list("pk", flat=True)}
        cutoff = now.timestamp() - expiry_seconds()
        for path in [*folder.glob("*.part"), *folder.glob("*.crc32")]:
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                if path.stem not in known and st.st_mtime < cutoff:  # a file whose row is gone
                    path.unlink()
                    freed += st.st_size
    return removed, freed


def start_janitor(interval: float | None = None):
    """Run `cleanup` every `interval` seconds in a daemon thread (started by each worker);
    returns the Event that stops it."""
    import threading

    every = interval or float(os.environ.get("IONSIEVE_UPLOAD_CLEANUP_SECONDS", "3600"))
    stop = threading.Event()

    def loop() -> None:
        from django.db import connection

        while not stop.is_set():
            try:
                removed, freed = cleanup()
                if removed:
                    log.info("removed %s abandoned upload(s), %.1f MB freed", removed, freed / 1e6)
            except Exception:  # noqa: BLE001 - the janitor must never die
                log.exception("upload cleanup")
            finally:
                connection.close()
            stop.wait(every)

    threading.Thread(target=loop, daemon=True, name="ionsieve-upload-janitor").start()
    return stop
