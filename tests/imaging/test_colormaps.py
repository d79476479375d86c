"""Colour maps: viridis, inferno, magma and turbo work without matplotlib, equal matplotlib's
tables, and there is one copy of viridis (thumbnails and the reading of viridis renders)."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.imaging.colormaps import EMBEDDED, lut_8bit, lut_float
from ionsieve_core.imaging.thumbnails import to_thumbnail_png

ROOT = Path(__file__).resolve().parents[2]


def png_pixels(data: bytes) -> np.ndarray:
    """RGBA pixels of an 8-bit RGBA PNG written by scaling._png (one IDAT, filter 0)."""
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 4 * width)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, 4)


@pytest.mark.parametrize("name", EMBEDDED)
def test_it_renders_each_map_from_low_to_high(name):
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (8, 1))
    px = png_pixels(to_thumbnail_png(ramp, size=64, cmap=name, clip_q=100))
    lut = lut_8bit(name)
    assert (px[0, 0, :3] == lut[0]).all() and (px[0, -1, :3] == lut[255]).all()
    assert (px[..., 3] == 255).all()


def test_it_renders_every_map_with_matplotlib_unimportable():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import numpy as np\n"
        "from ionsieve_core.imaging.thumbnails import to_thumbnail_png\n"
        "img = np.random.default_rng(0).random((20, 30)).astype('float32')\n"
        "print(sorted(len(to_thumbnail_png(img, cmap=c)) > 100 for c in ('viridis', 'inferno', 'magma', 'turbo', 'gray')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, True, True, True]"


def test_it_has_no_matplotlib_fallback_left():
    for path in (
        "ionsieve_core/imaging/scaling.py",
        "ionsieve_core/imaging/colormaps.py",
        "ionsieve_core/imagesets/images.py",
    ):
        assert "import matplotlib" not in (ROOT / path).read_text()
        assert "from matplotlib" not in (ROOT / path).read_text()


@pytest.mark.parametrize("name", EMBEDDED)
def test_it_equals_matplotlibs_table(name):
    colormaps = pytest.importorskip("matplotlib").colormaps
    expected = np.asarray(colormaps[name](np.arange(256)))[:, :3]
    assert np.array_equal(lut_float(name), expected)
    assert np.array_equal(lut_8bit(name), (expected * 255).round().astype(np.uint8))


def test_it_names_the_maps_it_has_when_asked_for_another():
    with pytest.raises(
        ValueError, match="unknown colour map 'jet': choose one of viridis, inferno, magma, turbo, gray"
    ):
        lut_8bit("jet")


def test_it_keeps_one_copy_of_viridis():
    from ionsieve_core.imagesets import images

    assert images.VIRIDIS_LUT is lut_float("viridis")
    assert not (ROOT / "webapp" / "imagesets" / "viridis.py").exists()
    assert not lut_float("viridis").flags.writeable and not lut_8bit("turbo").flags.writeable
