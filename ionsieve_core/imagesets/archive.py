"""Unpacking an uploaded .zip without trusting anything in it.

Every entry is checked before a single byte is written (names, types, declared sizes, ratios);
then entries are streamed to disk in chunks while the real bytes are counted, because headers
can lie. On any refusal nothing is left behind.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ionsieve_core.imagesets.errors import ImageSetError

CHUNK = 1 << 20
# Small entries cannot hurt whatever their ratio (a 20 KB mask of zeros compresses 500:1);
# the ratio check is for entries that would grow past this.
RATIO_FLOOR_BYTES = 1 << 20
# Packaging litter from macOS and Windows: never part of a collection.
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _ignored(parts: tuple[str, ...]) -> bool:
    return "__MACOSX" in parts or parts[-1] in IGNORED_NAMES or parts[-1].startswith("._")


def entry_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of a zip entry name, or None when the name is unsafe (escapes the target)."""
    # Some Windows tools write backslashes as separators: treat them as such, so that
    # "..\\..\\x" is seen for what it is.
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        return None
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if any(p == ".." or _DRIVE.match(p) for p in parts):
        return None
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _is_special(info: zipfile.ZipInfo) -> bool:
    """Device, FIFO or socket entries (Unix mode bits: neither file, folder nor link)."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    return bool(mode) and kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK)


def _check(
    infos: list[zipfile.ZipInfo], max_total_bytes: int, max_entries: int, max_ratio: float
) -> tuple[list[str], list[tuple[zipfile.ZipInfo, tuple[str, ...]]]]:
    problems: list[str] = []
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    if len(infos) > max_entries:
        return [f"the archive holds {len(infos):,} entries, more than the {max_entries:,} allowed"], []
    seen: dict[str, str] = {}
    total = 0
    for info in infos:
        shown = info.filename.replace("\\", "/")
        parts = entry_parts(info.filename)
        if _CONTROL.search(info.filename):
            problems.append(f"'{_CONTROL.sub('?', shown)[:200]}' has control characters in its name")
            continue
        if parts is None:
            problems.append(
                f"'{shown[:200]}' would be written outside the archive's folder (refused for safety)"
            )
            continue
        if not parts or _ignored(parts):
            continue
        if _is_symlink(info):
            problems.append(f"'{shown}' is a symbolic link (links are refused for safety)")
            continue
        if _is_special(info):
            problems.append(f"'{shown}' is not a regular file")
            continue
        if info.is_dir() or shown.endswith("/"):
            plan.append((info, parts))
            continue
        if info.flag_bits & 0x1:
            problems.append(f"'{shown}' is password-protected (encrypted archives cannot be read)")
            continue
        if info.compress_type not in SUPPORTED_METHODS:
            problems.append(
                f"'{shown}' uses an unsupported compression method ({info.compress_type}); "
                "re-create the zip with ordinary compression"
            )
            continue
        key = "/".join(parts).casefold()  # case-insensitive file systems would merge these
        if key in seen:
            problems.append(f"'{shown}' appears twice in the archive")
            continue
        seen[key] = shown
        total += info.file_size
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > max_ratio * max(1, info.compress_size):
            problems.append(
                f"'{shown}' expands {info.file_size / max(1, info.compress_size):,.0f} times "
                f"when unpacked (more than {max_ratio:g} times looks like a zip bomb)"
            )
            continue
        plan.append((info, parts))
    if total > max_total_bytes:
        problems.append(
            f"the archive unpacks to {total / 1e9:,.2f} GB, more than the "
            f"{max_total_bytes / 1e9:,.2f} GB allowed"
        )
    if not problems and not any(not i.is_dir() for i, _ in plan):
        problems.append("the archive is empty (no files in it)")
    return problems, plan


def _stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, max_ratio: float) -> int:
    """Copy one entry to `target` in chunks; returns the bytes written. Stops as soon as the real
    size passes the declared size, the archive budget or the ratio limit."""
    written = 0
    shown = info.filename.replace("\\", "/")
    with zf.open(info) as src, open(target, "xb") as dst:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > info.file_size:
                raise ImageSetError(
                    f"'{shown}' holds more data than its header declares (refused for safety)"
                )
            if written > budget:
                raise ImageSetError("the archive unpacks to more than the size allowed")
            if written > RATIO_FLOOR_BYTES and written > max_ratio * max(1, info.compress_size):
                raise ImageSetError(
                    f"'{shown}' expands more than {max_ratio:g} times when unpacked (looks like a zip bomb)"
                )
            dst.write(chunk)
    return written


def safe_extract(
    zip_path: str | Path,
    dest_dir: str | Path,
    max_total_bytes: int = 2_000_000_000,
    max_entries: int = 200_000,
    max_ratio: float = 200,
) -> Path:
    """Unpack `zip_path` under `dest_dir` and return the folder to hand to `plan_import`.

    Returns `dest_dir/<zip stem>` (a fresh folder; `<stem>-2` etc. when taken), always, even when
    the archive holds a single top folder: `plan_import` looks through such a wrapper folder itself,
    because only it knows the project's classes, and a lone `on/` folder is a label folder, not a
    wrapper. A dataset read from the root itself is thus named after the archive.
    A gold-standard tree `<dataset>/<label>/<img>.png` plans as datasets named `<dataset>`.

    Raises ImageSetError listing every problem (unsafe names, links, encryption, too many entries,
    too large, zip bombs, empty, not a zip) and leaves nothing in `dest_dir`. Other OSErrors
    (disk full) are re-raised after the same clean-up.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    created_dest = not dest_dir.exists()
    stem = re.sub(r"[^\w.\- ]+", "_", zip_path.stem).strip(" .") or "archive"
    root = dest_dir / stem
    n = 1
    while root.exists():  # never write into, or clean up, a folder that was there before
        n += 1
        root = dest_dir / f"{stem}-{n}"
    try:
        zf = zipfile.ZipFile(zip_path)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        EOFError,
        NotImplementedError,
        OSError,
    ) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ImageSetError(f"{zip_path.name} was not found")
        raise ImageSetError(f"{zip_path.name} is not a zip archive (or it is damaged)")
    with zf:
        problems, plan = _check(zf.infolist(), max_total_bytes, max_entries, max_ratio)
        if problems:
            raise ImageSetError(problems)
        try:
            root.mkdir(parents=True)
            base = root.resolve()
            budget = max_total_bytes
            for info, parts in plan:
                target = root.joinpath(*parts)
                # Defence in depth: the resolved target must stay inside the root.
                if not target.resolve().is_relative_to(base):
                    raise ImageSetError(f"'{info.filename}' would be written outside the archive's folder")
                if info.is_dir() or info.filename.replace("\\", "/").endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                budget -= _stream(zf, info, target, budget, max_ratio)
        except ImageSetError:
            _clean(root, dest_dir, created_dest)
            raise
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            _clean(root, dest_dir, created_dest)
            # CRC mismatches land here: a header that under-declares its data, or a damaged file.
            raise ImageSetError(f"{zip_path.name} is damaged and cannot be unpacked ({str(exc)[:120]})")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            _clean(root, dest_dir, created_dest)
            raise ImageSetError(f"{zip_path.name} holds a file and a folder of the same name")
        except BaseException:
            _clean(root, dest_dir, created_dest)
            raise
    return root


def _clean(root: Path, dest_dir: Path, created_dest: bool) -> None:
    shutil.rmtree(root, ignore_errors=True)
    if created_dest:
        shutil.rmtree(dest_dir, ignore_errors=True)
