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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

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
def create(user, project, *, length: int, filename: str) -> Upload:
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
    return upload


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


def append(
    upload: Upload,
    offset: int,
    read: Callable[[int], bytes],
    content_length: int | None,
    checksum: Checksum | None,
) -> Upload:
    """Write one part at `offset`. With a checksum, the part is kept only whole and matching;
    without one, whatever arrived is kept (tus core), so a cut connection loses nothing."""
    with _locked(upload) as f:
        upload.refresh_from_db()
        # The database is the truth: bytes written after the last recorded offset (a server killed
        # between the write and the update) are cut off.
        f.truncate(upload.offset)
        if offset != upload.offset:
            raise UploadRefused(
                f"this part of '{upload.filename}' starts at byte {offset:,} but the server holds "
                f"{upload.offset:,} bytes: parts must be sent in order and once. Ask the server where to "
                "resume (HEAD) and continue from there",
                409,
            )
        room = upload.length - upload.offset
        if content_length is not None and content_length > room:
            raise UploadRefused(
                f"this part would take '{upload.filename}' past its declared size of {upload.length:,} bytes",
                413,
            )
        if checksum is not None and content_length is None:
            raise UploadRefused("a part with a checksum needs a Content-Length")
        part = checksum.hasher() if checksum else None
        crc = upload.crc32
        received = 0
        want = content_length if content_length is not None else room + 1
        f.seek(upload.offset)
        cut = False
        try:
            while received < want:
                block = read(min(READ_BLOCK, want - received))
                if not block:
                    break
                if received + len(block) > room:
                    raise UploadRefused(
                        f"this part would take '{upload.filename}' past its declared size of "
                        f"{upload.length:,} bytes",
                        413,
                    )
                f.write(block)
                crc = zlib.crc32(block, crc)
                if part is not None:
                    part.update(block)
                received += len(block)
        except UploadRefused:
            f.truncate(upload.offset)
            raise
        except OSError as exc:  # the client went away mid-part (or the disk is full)
            cut = True
            log.info("upload %s: part cut after %s bytes (%s)", upload.pk, received, exc)
        if content_length is not None and received < content_length:
            cut = True
        if part is not None and (cut or part.digest() != checksum.digest):
            f.truncate(upload.offset)
            if cut:
                raise UploadRefused(
                    f"this part of '{upload.filename}' arrived incomplete ({received:,} of "
                    f"{content_length:,} bytes) and was discarded: send it again",
                    400,
                )
            raise UploadRefused(
                f"this part of '{upload.filename}' arrived damaged (its {checksum.algorithm} "
                "checksum does not match) and was discarded: send it again",
                460,
            )
        f.flush()
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
            raise UploadRefused(
                "another transfer changed this upload at the same time: ask where to resume", 409
            )
    upload.refresh_from_db()
    return upload


def discard(upload: Upload) -> None:
    upload.path.unlink(missing_ok=True)
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
    expected = parse_crc32(crc32)
    if expected is not None and expected != upload.crc32:
        raise UploadRefused(
            f"{role} '{upload.filename}' does not match the file you sent (CRC-32 "
            f"{upload.crc32:08x} received, {expected:08x} expected): upload it again"
        )
    return upload, ReceivedFile(name=upload.filename, size=upload.length, path=upload.path)


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
        for path in folder.glob("*.part"):
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
