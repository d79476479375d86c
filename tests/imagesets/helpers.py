"""Small builders for the imagesets tests: PNGs, zips, folders."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.shared_data import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
# Real data (licenses in /work/shared/data/README.md): METASPACE examples (Apache-2.0),
# DeepLoc yeast (BSD-3-Clause).
DATA = SHARED_DATA
METASPACE = DATA / "ionimages" / "metaspace_examples"
DEEPLOC = DATA / "microscopy" / "deeploc_yeast"
DEEPLOC_CLASSES = [
    "ER",
    "bud",
    "bud_neck",
    "cell_periphery",
    "cytosol",
    "mitochondria",
    "nuclear_periphery",
    "nucleus",
    "punctate",
    "vacuole",
    "vacuole_membrane",
]


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, "PNG") if mode else Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def write_png(path: Path, shape: tuple[int, int] = (8, 8), seed: int = 0, dtype=np.uint8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    top = 255 if dtype == np.uint8 else 65535
    path.write_bytes(png_bytes(np.random.default_rng(seed).integers(0, top, shape, dtype=dtype)))
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def make_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []
