"""PNG thumbnails: ion images, stacks and channel composites (ionsieve_core/imaging/thumbnails.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ionsieve_core.imaging import thumbnails
from ionsieve_core.imaging.scaling import hotspot_clip, scale
from ionsieve_core.imaging.thumbnails import (
    _percentile_of_nonzero,
    composite_png,
    iter_thumbnails_png,
    thumbnail_png,
    to_thumbnail_png,
)


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


# ---- the stack renderer used by ingestion ---------------------------------------------------


def _pil_reference(img: np.ndarray, size: int, mode: str = "linear") -> np.ndarray:
    """Clip, scale, then PIL resizes the values and the acquired mask as float images (BOX to
    shrink, NEAREST to grow); mean value over acquired pixels -> colour, acquired fraction ->
    alpha. Returns what is seen: RGB x alpha, and alpha."""
    from ionsieve_core.imaging.colormaps import lut_8bit as _lut

    s = scale(hotspot_clip(img, 99), mode)
    known = ~np.isnan(s)
    h, w = img.shape
    f = size / max(h, w)
    new = (max(1, round(w * f)), max(1, round(h * f)))
    how = Image.Resampling.NEAREST if f >= 1 else Image.Resampling.BOX
    val = np.asarray(
        Image.fromarray(np.where(known, s, 0).astype(np.float32), "F").resize(new, how), dtype=np.float64
    )
    cover = np.asarray(Image.fromarray(known.astype(np.float32), "F").resize(new, how), dtype=np.float64)
    val = np.divide(val, cover, out=np.zeros_like(val), where=cover > 0)
    rgba = np.zeros(val.shape + (4,), np.uint8)
    rgba[..., :3] = _lut("viridis")[np.rint(np.clip(val, 0, 1) * 255).astype(np.uint8)]
    rgba[..., 3] = np.rint(cover * 255).astype(np.uint8)
    return _seen(rgba)


def _seen(rgba: np.ndarray) -> np.ndarray:
    out = rgba.astype(np.float64)
    out[..., :3] *= out[..., 3:] / 255
    return out


def _stack(k: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    blobs = np.stack(
        [
            np.exp(
                -((yy - rng.uniform(0, h)) ** 2 + (xx - rng.uniform(0, w)) ** 2) / (2 * (min(h, w) / 4) ** 2)
            )
            for _ in range(k)
        ]
    )
    images = (blobs * rng.uniform(10, 1e4, (k, 1, 1))).astype(np.float32)
    images[rng.random(images.shape) < 0.3] = 0  # sparse, as MSI ion images are
    images[:, rng.integers(0, h, 3), rng.integers(0, w, 3)] *= 50  # hotspots
    holes = rng.random((h, w)) < 0.1
    holes[: h // 3, : w // 4] = True  # a non-rectangular acquisition
    images[:, holes] = np.nan
    return images


@pytest.mark.parametrize(
    "shape,size",
    [((120, 150), 128), ((300, 41), 64), ((21, 17), 128), ((64, 64), 64)],
    ids=["shrink", "shrink-tall", "grow", "same"],
)
@pytest.mark.parametrize("mode", ["linear", "log", "equalized"])
def test_it_renders_a_stack_as_pil_did_image_by_image(shape: tuple[int, int], size: int, mode: str) -> None:
    images = _stack(6, *shape)
    images[4] = 0  # an image without signal
    images[5] = np.nan  # and one never acquired
    pngs = list(iter_thumbnails_png(images, size=size, mode=mode))
    assert len(pngs) == 6
    for img, png in zip(images, pngs, strict=True):
        im = Image.open(io.BytesIO(png))
        assert im.mode == "RGBA"
        got = _seen(np.asarray(im))
        want = _pil_reference(img.astype(np.float64), size, mode)
        assert got.shape == want.shape
        # float32 rounding may move a value across a colour level, no more
        diff = np.abs(got - want)
        assert diff.mean() < 0.2, diff.mean()
        assert diff.max() <= 6
    assert (np.asarray(Image.open(io.BytesIO(pngs[5])))[..., 3] == 0).all()


def test_it_clips_at_numpys_percentile_of_the_nonzero_values() -> None:
    rng = np.random.default_rng(1)
    a = rng.gamma(0.5, 100, (40, 500)).astype(np.float32)
    a[rng.random(a.shape) < 0.5] = 0
    a[3] = 0
    a[4, :-1] = 0  # a single non-zero value
    a[5, 10:] = np.nan
    a[6, 0] = np.inf
    known = np.isfinite(a)
    for q in (50, 99, 100):
        got = _percentile_of_nonzero(a.copy(), known, q)
        for i, row in enumerate(a):
            vals = row[np.isfinite(row) & (row != 0)].astype(np.float64)
            want = np.percentile(vals, q) if vals.size else np.inf
            assert got[i] == pytest.approx(want, rel=1e-6), (q, i)


def test_it_renders_a_memory_map_batch_by_batch(tmp_path, monkeypatch) -> None:
    images = _stack(7, 40, 50, seed=2)
    path = tmp_path / "images.npy"
    np.save(path, images)
    whole = list(iter_thumbnails_png(images))
    monkeypatch.setattr(thumbnails, "_BATCH_VALUES", 2 * 40 * 50)  # two images per batch
    assert list(iter_thumbnails_png(np.load(path, mmap_mode="r"))) == whole
    assert to_thumbnail_png(images[3]) == whole[3]


def test_it_blends_channels_in_their_colours() -> None:
    img = np.zeros((20, 30, 2), np.float32)
    img[:, :15, 0] = np.linspace(1, 2, 15)  # the first channel on the left half
    img[:, 15:, 1] = np.linspace(1, 2, 15)  # the second on the right
    img[:2, :3] = np.nan  # no channel acquired there
    img[5, 20, 0] = np.nan  # one channel missing: the other still shows
    a = np.asarray(Image.open(io.BytesIO(composite_png(img, ["green", "Blue"], size=30))))
    assert a.shape == (20, 30, 4)
    assert tuple(a[10, 14]) == (0, 255, 0, 255) and tuple(a[10, 29]) == (0, 0, 255, 255)
    assert (a[:2, :3, 3] == 0).all() and a[5, 20, 3] == 255
    # unnamed channels take the fallback colours (green, then magenta)
    b = np.asarray(Image.open(io.BytesIO(thumbnail_png(img, size=30))))
    assert tuple(b[10, 29, :3]) == (255, 0, 255)


def test_it_averages_composite_colours_over_acquired_pixels_when_shrinking() -> None:
    img = np.zeros((40, 40, 3), np.float32)
    img[..., 0] = np.linspace(0, 1, 40)  # red grows to the right
    img[:20] = np.nan  # the top half never acquired
    a = np.asarray(Image.open(io.BytesIO(composite_png(img, ["red", "green", "blue"], size=20))))
    assert a.shape == (20, 20, 4)
    assert (a[:10, :, 3] == 0).all() and (a[10:, :, 3] == 255).all()
    assert (a[10:, :, 1:3] == 0).all() and (a[10:, -1, 0] > 240).all() and (a[10:, 0, 0] < 10).all()
