"""Datasets' files on disk: atomic writes of derived files (readers never see a half-written
file), and removing a dataset with its folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_npy(final: Path, array: np.ndarray) -> None:
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def write_bytes(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def replace_dir(final: Path, build: Path) -> None:
    """Swap a fully built folder into place (old one removed afterwards)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(build, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def store_file(source, dest: Path) -> None:
    """Move an uploaded temp file or copy a stream/path to `dest` without holding it in memory."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, (str, Path)):
        try:
            os.link(source, dest)  # same disk: instant and no extra space
            return
        except OSError:
            shutil.copyfile(source, dest)
            return
    temp = getattr(source, "temporary_file_path", None)
    if temp is not None:
        try:
            shutil.move(temp(), dest)
            return
        except OSError:
            pass
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        for chunk in source.chunks(4 * 1024 * 1024):
            out.write(chunk)


def delete_dataset(dataset) -> None:
    """Delete the dataset's row (its images, labels and predictions go with it), then its folder."""
    directory = dataset.directory
    dataset.delete()
    shutil.rmtree(directory, ignore_errors=True)
