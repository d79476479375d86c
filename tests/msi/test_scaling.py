"""Display scaling and PNG thumbnails."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from webapp.msi.scaling import hotspot_clip, scale, to_thumbnail_png


def test_it_clips_hotspots_at_the_percentile_of_nonzero_pixels() -> None:
    img = np.zeros((20, 20))
    img[:10] = np.arange(1, 201).reshape(10, 20)  # 200 non-zero values, 200 zeros
    img[0, 0] = 1e9  # one hotspot
    img[19, 19] = np.nan
    clipped = hotspot_clip(img, q=99)
    nz = img[np.isfinite(img) & (img != 0)]
    assert np.nanmax(clipped) == pytest.approx(np.percentile(nz, 99))
    assert np.isnan(clipped[19, 19]) and clipped[15, 15] == 0
    assert clipped[5, 5] == img[5, 5]


@pytest.mark.parametrize("mode", ["linear", "log", "equalized"])
def test_it_scales_to_unit_range_keeping_nan(mode: str) -> None:
    img = np.array([[0.0, 1.0, 10.0], [100.0, np.nan, 1000.0]])
    s = scale(img, mode)
    assert np.isnan(s[1, 1])
    assert np.nanmin(s) == 0.0 and np.nanmax(s) == 1.0
    fin = s[np.isfinite(s)]
    assert np.all(np.diff(fin[[0, 1, 2, 3, 4]]) > 0)  # order kept
    if mode == "equalized":
        np.testing.assert_allclose(fin, [0, 0.25, 0.5, 0.75, 1.0])


def test_it_makes_nan_pixels_transparent_in_the_png() -> None:
    img = np.arange(20 * 40, dtype=np.float64).reshape(20, 40)
    img[:, :5] = np.nan
    png = to_thumbnail_png(img, size=128)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(png))
    assert im.mode == "RGBA" and im.size == (128, 64)  # aspect ratio kept
    a = np.asarray(im)
    assert (a[:, :10, 3] == 0).all()  # NaN columns: fully transparent
    assert (a[:, 20:, 3] == 255).all()
    # viridis ends: dark purple for the minimum, yellow for the maximum
    assert tuple(a[0, 20, :3]) == (0x44, 0x01, 0x54)
    assert tuple(a[-1, -1, :3]) == (0xFD, 0xE7, 0x25)


def test_it_downsizes_large_images() -> None:
    img = np.random.default_rng(0).random((300, 200))
    img[0, 0] = np.nan
    im = Image.open(io.BytesIO(to_thumbnail_png(img, size=64, mode="log")))
    assert im.size == (43, 64)
    assert np.asarray(im)[..., 3].min() < 255  # the NaN corner shows through
