"""Display scaling of ion images and PNG thumbnails (NaN = not acquired = transparent)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import numpy as np

from ionsieve_core.imaging.colormaps import lut_8bit


def _lut(cmap: str) -> np.ndarray:
    """(256, 3) uint8 RGB of a colour map (ionsieve_core/imaging/colormaps.py: no matplotlib needed)."""
    return lut_8bit(cmap)


def hotspot_clip(img: np.ndarray, q: float = 99) -> np.ndarray:
    """Clip values above the q-th percentile of the non-zero finite pixels.

    A few saturated hotspot pixels otherwise squash the rest of an MSI image to black.
    Zeros are left out of the percentile because they are usually background, not signal.
    """
    a = np.asarray(img, dtype=np.float64)
    hi = hotspot_threshold(a, q)
    if hi is None:
        return a.copy()
    with np.errstate(invalid="ignore"):
        return np.where(a > hi, hi, a)


def hotspot_threshold(img: np.ndarray, q: float = 99) -> float | None:
    """`hotspot_clip`'s upper bound: the q-th percentile of the non-zero finite pixels (None if none)."""
    a = np.asarray(img, dtype=np.float64)
    vals = a[np.isfinite(a) & (a != 0)]
    return float(np.percentile(vals, q)) if vals.size else None


# Clip sliders move in steps of 0.1 percentile: the page looks each step up in this table.
QUANTILE_STEPS = 1000


def display_stats(img: np.ndarray) -> dict:
    """What the image page needs to scale an image as `display_scale` does, without sorting
    millions of values in the browser: range, the default (hotspot) upper clip and where it
    sits among the pixels, and the 0, 0.1, ..., 100th percentiles of the acquired pixels."""
    a = np.asarray(img, dtype=np.float64)
    v = a[np.isfinite(a)]
    if v.size == 0:
        return {"min": None, "max": None, "hotspot": None, "hotspot_percentile": 100.0, "quantiles": []}
    hot = hotspot_threshold(v)
    hot = float(v.max()) if hot is None else hot
    return {
        "min": float(v.min()),
        "max": float(v.max()),
        "hotspot": hot,
        "hotspot_percentile": round(100 * np.count_nonzero(v <= hot) / v.size, 1),
        "quantiles": np.percentile(v, np.linspace(0, 100, QUANTILE_STEPS + 1)).tolist(),
    }


def display_scale(img: np.ndarray, lo: float, hi: float, mode: str = "linear") -> np.ndarray:
    """The image page's display: values clipped to [lo, hi], then `scale`d. static/js/scaling.js
    does the same in the browser; tests/browser/test_image_viewer_browser.py checks they agree."""
    a = np.asarray(img, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return scale(np.clip(a, lo, hi), mode)


def scale(img: np.ndarray, mode: str = "linear") -> np.ndarray:
    """Map an image to 0..1 for display; NaN stays NaN. mode: linear, log or equalized."""
    a = np.asarray(img, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    fin = np.isfinite(a)
    if not fin.any():
        return out
    v = a[fin]
    if mode == "linear":
        lo, hi = v.min(), v.max()
        out[fin] = (v - lo) / (hi - lo) if hi > lo else 0.0
    elif mode == "log":
        lv = np.log1p(np.clip(v - v.min(), 0, None))
        top = lv.max()
        out[fin] = lv / top if top > 0 else 0.0
    elif mode == "equalized":
        # rank transform: each value maps to the fraction of pixels below it (ties share)
        uniq, inverse = np.unique(v, return_inverse=True)
        out[fin] = inverse / (uniq.size - 1) if uniq.size > 1 else 0.0
    else:
        raise ValueError(f"unknown scaling mode {mode!r}")
    return out


def to_thumbnail_png(
    img: np.ndarray, size: int = 128, cmap: str = "viridis", mode: str = "linear", clip_q: float | None = 99
) -> bytes:
    """PNG bytes of a colour-mapped image whose longer side is `size` (aspect kept).

    The image is hotspot-clipped and scaled here; NaN pixels become fully transparent.
    """
    a = np.asarray(img)
    if a.ndim != 2 or a.size == 0:
        raise ValueError("an image must be a non-empty 2-D array")
    return next(iter_thumbnails_png(a[None], size=size, cmap=cmap, mode=mode, clip_q=clip_q))


# Work on this many input values at once (a few float32 scratch copies of ~32 MB each).
_BATCH_VALUES = 8 << 20


def iter_thumbnails_png(
    images: np.ndarray,
    size: int = 128,
    cmap: str = "viridis",
    mode: str = "linear",
    clip_q: float | None = 99,
) -> Iterator[bytes]:
    """PNG thumbnails of a (k, h, w) stack, one per image, in order: what `to_thumbnail_png`
    gives image by image, but each step runs over a batch of images at once.

    The stack may be a memory map of a multi-GB array: it is read a batch at a time. Per
    batch: hotspot percentiles from one partition, one clip-and-scale pass, a resize that
    touches each thumbnail pixel's few source pixels (NaN pixels weighted out), a colour
    lookup, then a fast PNG encode. Values are averaged before colour-mapping, where PIL
    averaged colours: the same picture within a few levels.
    """
    k, h, w = images.shape
    if h == 0 or w == 0:
        raise ValueError("an image must be a non-empty 2-D array")
    f = size / max(h, w)
    oh, ow = max(1, round(h * f)), max(1, round(w * f))
    rows, cols = _resize_taps(h, oh), _resize_taps(w, ow)
    # opaque colours packed as one 32-bit RGBA word each: one gather colours a whole batch
    lut = np.zeros((256, 4), np.uint8)
    lut[:, :3] = _lut(cmap)
    lut32 = lut.view("<u4").ravel()
    step = max(1, _BATCH_VALUES // (h * w))
    for b0 in range(0, k, step):
        a = np.array(images[b0 : b0 + step], dtype=np.float32).reshape(-1, h * w)
        known = np.isfinite(a)
        if clip_q is not None:
            np.minimum(a, _percentile_of_nonzero(a, known, clip_q)[:, None], out=a)
        s = _scale_rows(a, known, mode)
        s[~known] = 0
        s = s.reshape(-1, h, w)
        # resize values and acquired fraction alike; value / fraction = mean over acquired.
        # Ion images of one dataset share their acquired pixels: then one coverage serves all.
        same = bool((known == known[:1]).all())
        weight = known[:1] if same else known
        cover = _resize(_resize(weight.reshape(-1, h, w).astype(np.float32), rows, 1), cols, 2)
        val = _resize(_resize(s, rows, 1), cols, 2)
        np.divide(val, cover, out=val, where=cover > 0)
        np.clip(val, 0, 1, out=val)
        val *= 255
        packed = lut32[np.rint(val, out=val).astype(np.uint8)]
        rgba = packed.view(np.uint8).reshape(val.shape + (4,))
        rgba[..., 3] = np.rint(cover * 255).astype(np.uint8)  # broadcasts when shared
        for one in rgba:
            yield _png(one)


def _png(rgba: np.ndarray) -> bytes:
    """PNG bytes of an (h, w, 4) uint8 image, rows unfiltered, zlib level 1.

    Written by hand (the format is three chunks) because PIL always runs its adaptive row
    filter, which took 3x longer than the compression here and made larger files on these
    smooth, mostly flat thumbnails.
    """
    h, w, _ = rgba.shape
    raw = np.zeros((h, w * 4 + 1), np.uint8)  # a leading 0 per row: filter type "none"
    raw[:, 1:] = rgba.reshape(h, w * 4)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)),  # 8-bit RGBA
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), 1)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _resize_taps(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights, each (m, taps), resizing an axis of n pixels to m.

    Shrinking follows PIL's BOX filter (an output pixel averages the input pixels whose
    centres fall in its span), growing PIL's NEAREST (MSI pixels stay crisp squares), so
    thumbnails keep the geometry they had when PIL resized them one by one.
    """
    if m >= n:
        src = np.minimum(((np.arange(m) + 0.5) * (n / m)).astype(np.int64), n - 1)
        return src[:, None], np.ones((m, 1), np.float32)
    scale = n / m
    centre = (np.arange(m) + 0.5) * scale
    first = np.maximum((centre - 0.5 * scale + 0.5).astype(np.int64), 0)
    taps = int(np.ceil(scale)) + 1
    idx = first[:, None] + np.arange(taps)
    x = (idx - centre[:, None] + 0.5) / scale
    wts = ((x > -0.5) & (x <= 0.5) & (idx < n)).astype(np.float32)
    wts /= wts.sum(axis=1, keepdims=True)
    return np.minimum(idx, n - 1), wts


def _resize(a: np.ndarray, taps: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    idx, wts = taps
    shape = [1] * a.ndim
    shape[axis] = idx.shape[0]
    out = np.take(a, idx[:, 0], axis=axis) * wts[:, 0].reshape(shape)
    for t in range(1, idx.shape[1]):
        out += np.take(a, idx[:, t], axis=axis) * wts[:, t].reshape(shape)
    return out


def _percentile_of_nonzero(a: np.ndarray, known: np.ndarray, q: float) -> np.ndarray:
    """Per row, `hotspot_clip`'s threshold: the q-th percentile of the non-zero finite values
    (linear interpolation, as np.percentile), or +inf for rows with none.

    One sort of the whole float32 batch: numpy's vectorised (SIMD) sort beat np.partition
    by 5-10x on these arrays.
    """
    b, n = a.shape
    valid = known & (a != 0)
    count = np.count_nonzero(valid, axis=1)
    pos = q / 100 * np.maximum(count - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    work = np.where(valid, a, -np.inf).astype(np.float32, copy=False)
    work.sort(axis=1)  # ascending; the invalid (-inf) first
    rows = np.arange(b)
    at = np.clip(n - count + lo, 0, n - 1)  # position of rank `lo` among the valid values
    nxt = np.minimum(at + 1, n - 1)
    below, above = work[rows, at].astype(np.float64), work[rows, nxt].astype(np.float64)
    with np.errstate(invalid="ignore"):
        top = np.where(frac > 0, below + frac * (above - below), below)
    top[count == 0] = np.inf  # nothing to clip against
    return top.astype(np.float32)


def _scale_rows(a: np.ndarray, known: np.ndarray, mode: str) -> np.ndarray:
    """`scale` of every row at once, in place where it can (linear and log vectorised;
    equalized row by row). Non-finite pixels come out unspecified: callers mask them."""
    if mode == "equalized":
        return np.stack([scale(row, mode) for row in a]).astype(np.float32)
    if mode not in ("linear", "log"):
        raise ValueError(f"unknown scaling mode {mode!r}")
    lo = np.min(np.where(known, a, np.inf), axis=1, keepdims=True)
    lo[~np.isfinite(lo)] = 0
    with np.errstate(invalid="ignore"):
        a -= lo
        if mode == "log":
            np.clip(a, 0, None, out=a)
            np.log1p(a, out=a)
    top = np.max(np.where(known, a, -np.inf), axis=1, keepdims=True)
    inv = np.where(top > 0, 1 / np.where(top > 0, top, 1), 0).astype(np.float32)
    a *= inv  # rows without range map to 0, as scale() does
    return a
