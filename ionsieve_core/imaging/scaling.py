"""Display scaling of ion images (NaN = not acquired): hotspot clips, linear / log / equalized
scales, and the statistics the image page scales with (its JavaScript only applies them:
static/js/scaling.js). Thumbnails are drawn by thumbnails.py."""

from __future__ import annotations

import numpy as np


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


# The page equalises with the sorted distinct values (exact) up to this many of them; past
# that, with the values at this many evenly spaced distinct ranks (within 1/65,536 of exact).
EQUALIZATION_POINTS = 1 << 16


def equalization_table(img: np.ndarray, points: int = EQUALIZATION_POINTS) -> tuple[np.ndarray, int]:
    """The equalized scale as a table the page looks pixels up in: the sorted distinct finite
    values (at most `points` of them; past that, the values at `points` evenly spaced ranks)
    and how many distinct values there are. Entry j sits at rank j * (distinct - 1) / (len - 1)
    among them; `scale(..., "equalized")` maps rank k to k / (distinct - 1)."""
    a = np.asarray(img, dtype=np.float64)
    u = np.unique(a[np.isfinite(a)])
    if u.size <= points:
        return u, int(u.size)
    ranks = (np.arange(points) * (u.size - 1)) / (points - 1)  # as the page computes them
    return np.interp(ranks, np.arange(u.size), u), int(u.size)
