"""PNG thumbnails: THE renderer of every small picture IonSieve stores (ion images, imported
pictures and their channel composites). Values are hotspot-clipped and scaled as
`scaling.scale` does, resized (BOX to shrink, NEAREST to grow), colour-mapped and written as
PNG; NaN = not acquired = transparent. Vectorised over a stack; no PIL, no Django."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

import numpy as np

from ionsieve_core.imaging.colormaps import lut_8bit
from ionsieve_core.imaging.scaling import scale
from ionsieve_core.imaging.slabs import release_pages

# Fluorescence convention (Human Protein Atlas): each named channel gets its own colour.
CHANNEL_COLOURS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "grey": (1.0, 1.0, 1.0),
    "gray": (1.0, 1.0, 1.0),
}
FALLBACK = [
    (0.0, 1.0, 0.0),
    (1.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 1.0, 0.0),
    (1.0, 0.0, 0.0),
    (0.0, 0.0, 1.0),
]

# Work on this many input values at once (a few float32 scratch copies of ~32 MB each).
_BATCH_VALUES = 8 << 20


def channel_colour(name: str, i: int) -> tuple[float, float, float]:
    """A channel's colour (RGB, 0..1): its name if it names one, else the fallback order."""
    return CHANNEL_COLOURS.get(name.lower(), FALLBACK[i % len(FALLBACK)])


def thumbnail_png(image: np.ndarray, channels: Sequence[str] | None = None, size: int = 128) -> bytes:
    """PNG of one picture: (h, w) colour-mapped, (h, w, c) as a composite of its channels."""
    if image.ndim == 2:
        return to_thumbnail_png(image, size=size)
    return composite_png(image, channels or [], size=size)


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


def iter_thumbnails_png(
    images: np.ndarray,
    size: int = 128,
    cmap: str = "viridis",
    mode: str = "linear",
    clip_q: float | None = 99,
    batch_values: int | None = None,
) -> Iterator[bytes]:
    """PNG thumbnails of a (k, h, w) stack, one per image, in order: what `to_thumbnail_png`
    gives image by image, but each step runs over a batch of images at once (of about
    `batch_values` values, default _BATCH_VALUES; the thumbnails do not depend on it).

    The stack may be a memory map of a multi-GB array: it is read a batch at a time. Per
    batch: hotspot percentiles from one partition, one clip-and-scale pass, a resize that
    touches each thumbnail pixel's few source pixels (NaN pixels weighted out), a colour
    lookup, then a fast PNG encode. Values are averaged before colour-mapping, where PIL
    averaged colours: the same picture within a few levels.
    """
    k, h, w = images.shape
    if h == 0 or w == 0:
        raise ValueError("an image must be a non-empty 2-D array")
    taps = _taps(h, w, size)
    # opaque colours packed as one 32-bit RGBA word each: one gather colours a whole batch
    lut = np.zeros((256, 4), np.uint8)
    lut[:, :3] = lut_8bit(cmap)
    lut32 = lut.view("<u4").ravel()
    step = max(1, (batch_values or _BATCH_VALUES) // (h * w))
    for b0 in range(0, k, step):
        s, known = _clipped_scaled(np.array(images[b0 : b0 + step], dtype=np.float32), clip_q, mode)
        release_pages(images[b0 : b0 + step])  # a memory-mapped stack's pages leave the RSS
        # Ion images of one dataset share their acquired pixels: then one coverage serves all.
        same = bool((known == known[:1]).all())
        val, cover = _resized(s, known[:1] if same else known, taps)
        np.clip(val, 0, 1, out=val)
        val *= 255
        packed = lut32[np.rint(val, out=val).astype(np.uint8)]
        rgba = packed.view(np.uint8).reshape(val.shape + (4,))
        rgba[..., 3] = np.rint(cover * 255).astype(np.uint8)  # broadcasts when shared
        for one in rgba:
            yield _png(one)


def composite_png(image: np.ndarray, channels: Sequence[str], size: int = 128) -> bytes:
    """PNG of an (h, w, c) picture: each channel hotspot-clipped and scaled, tinted with its
    colour (`channel_colour`) and added; transparent where no channel was acquired."""
    h, w, c = image.shape
    if h == 0 or w == 0:
        raise ValueError("an image must be a non-empty 2-D array")
    stack = np.moveaxis(np.asarray(image, dtype=np.float32), -1, 0)  # (c, h, w)
    s, known = _clipped_scaled(stack, 99, "linear")
    names = [channels[i] if i < len(channels) else "" for i in range(c)]
    tints = np.array([channel_colour(name, i) for i, name in enumerate(names)], np.float32)
    rgb = np.clip(np.tensordot(s, tints, axes=([0], [0])), 0, 1)[None]  # (1, h, w, 3)
    val, cover = _resized(rgb, known.any(axis=0)[None], _taps(h, w, size))
    rgba = np.empty(val.shape[1:3] + (4,), np.uint8)
    rgba[..., :3] = np.rint(np.clip(val[0], 0, 1) * 255)
    rgba[..., 3] = np.rint(cover[0, ..., 0] * 255)
    return _png(rgba)


def _clipped_scaled(a: np.ndarray, clip_q: float | None, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """A (b, h, w) float32 batch hotspot-clipped and `scale`d per image (in place), NaN set to
    0, and the acquired mask."""
    b, h, w = a.shape
    flat = a.reshape(b, h * w)
    known = np.isfinite(flat)
    if clip_q is not None:
        np.minimum(flat, _percentile_of_nonzero(flat, known, clip_q)[:, None], out=flat)
    s = _scale_rows(flat, known, mode)
    s[~known] = 0
    return s.reshape(b, h, w), known.reshape(b, h, w)


def _taps(h: int, w: int, size: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    f = size / max(h, w)
    return _resize_taps(h, max(1, round(h * f))), _resize_taps(w, max(1, round(w * f)))


def _resized(s: np.ndarray, known: np.ndarray, taps) -> tuple[np.ndarray, np.ndarray]:
    """Resize values (b, h, w[, 3]) and acquired fraction (b or 1, h, w) alike; returns (mean
    value over the acquired pixels, acquired fraction), the fraction shaped to broadcast."""
    rows, cols = taps
    cover = _resize(_resize(known.astype(np.float32), rows, 1), cols, 2)
    if s.ndim == 4:
        cover = cover[..., None]
    val = _resize(_resize(s, rows, 1), cols, 2)
    np.divide(val, cover, out=val, where=cover > 0)
    return val, cover


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
