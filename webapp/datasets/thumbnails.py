"""Thumbnails of imported pictures: one channel colour-mapped, several channels blended."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ionsieve_core.imaging.scaling import hotspot_clip, scale, to_thumbnail_png

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


def thumbnail_png(image: np.ndarray, channels: list[str] | None = None, size: int = 128) -> bytes:
    if image.ndim == 2:
        return to_thumbnail_png(image, size=size)
    return composite_png(image, channels or [], size=size)


def composite_png(image: np.ndarray, channels: list[str], size: int = 128) -> bytes:
    h, w, c = image.shape
    rgb = np.zeros((h, w, 3))
    for i in range(c):
        name = channels[i].lower() if i < len(channels) else ""
        colour = np.array(CHANNEL_COLOURS.get(name, FALLBACK[i % len(FALLBACK)]))
        rgb += np.nan_to_num(scale(hotspot_clip(image[..., i])))[..., None] * colour
    rgb = np.clip(rgb, 0, 1)
    alpha = np.where(np.isnan(image).all(axis=-1), 0, 255).astype(np.uint8)
    rgba = np.dstack([(rgb * 255).round().astype(np.uint8), alpha])
    im = Image.fromarray(rgba, "RGBA")
    f = size / max(h, w)
    im = im.resize(
        (max(1, round(w * f)), max(1, round(h * f))),
        Image.Resampling.NEAREST if f >= 1 else Image.Resampling.BOX,
    )
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
