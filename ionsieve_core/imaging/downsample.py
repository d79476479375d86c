"""Smaller copies of big arrays for figures: block-averaged images (the TIC side figure), mean
spectra thinned to their bin maxima, and grids as JSON-ready rows."""

from __future__ import annotations

import math

import numpy as np

MAX_SIDE = 256
MAX_SPECTRUM_POINTS = 5000


def block_mean(a: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, int]:
    """Average f x f blocks (NaN-aware) so the longer side is at most `max_side`; returns (array, f)."""
    a = np.asarray(a, dtype=np.float64)
    h, w = a.shape
    f = max(1, math.ceil(max(h, w) / max_side))
    if f == 1:
        return a, 1
    hh, ww = math.ceil(h / f) * f, math.ceil(w / f) * f
    padded = np.full((hh, ww), np.nan)
    padded[:h, :w] = a
    blocks = padded.reshape(hh // f, f, ww // f, f)
    finite = np.isfinite(blocks)
    n = finite.sum(axis=(1, 3))
    total = np.where(finite, blocks, 0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan), f


def grid_json(a: np.ndarray) -> list[list[float | None]]:
    """Rows of floats (6 significant digits) with NaN as null: JSON has no NaN."""
    return [
        [None if not math.isfinite(x) else float(f"{x:.6g}") for x in row] for row in np.asarray(a).tolist()
    ]


def downsample_spectrum(
    mz: np.ndarray, intensity: np.ndarray, n: int = MAX_SPECTRUM_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` points, keeping the maximum of each bin so peaks never disappear."""
    mz, intensity = np.asarray(mz, dtype=np.float64), np.asarray(intensity, dtype=np.float64)
    if mz.size <= n:
        return mz, intensity
    size = math.ceil(mz.size / n)
    pad = (-mz.size) % size
    padded = np.concatenate([intensity, np.full(pad, -np.inf)]).reshape(-1, size)
    keep = np.arange(padded.shape[0]) * size + padded.argmax(axis=1)
    return mz[keep], intensity[keep]
