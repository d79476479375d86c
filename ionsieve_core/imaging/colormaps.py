"""Colour maps for ion images, embedded so that every map works without matplotlib.

viridis, inferno, magma and turbo are matplotlib's 256-entry tables, stored once in
colormaps.npy (scripts/make_colormaps.py wrote it; viridis, inferno and magma are CC0, by
Nathaniel J. Smith, Stefan van der Walt and Eric Firing; turbo is Apache-2.0, by Google).
This is the one copy: thumbnails (thumbnails.py) and the reading of viridis renders
(ionsieve_core/imagesets/images.py) both use it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

LUT_FILE = Path(__file__).with_name("colormaps.npy")
EMBEDDED = ("viridis", "inferno", "magma", "turbo")
GREY_NAMES = ("gray", "grey", "greys_r")
NAMES = (*EMBEDDED, "gray")


@cache
def _tables() -> np.ndarray:
    tables = np.load(LUT_FILE, allow_pickle=False)
    tables.setflags(write=False)
    return tables


@cache
def lut_float(name: str) -> np.ndarray:
    """(256, 3) float64 RGB in 0..1, read-only; row k is the colour of the value k / 255."""
    key = name.lower()
    if key in GREY_NAMES:
        grey = np.repeat(np.linspace(0, 1, 256)[:, None], 3, axis=1)
        grey.setflags(write=False)
        return grey
    if key not in EMBEDDED:
        raise ValueError(f"unknown colour map '{name}': choose one of {', '.join(NAMES)}")
    return _tables()[EMBEDDED.index(key)]


@cache
def lut_8bit(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB, read-only, as an 8-bit render stores the map."""
    lut = np.round(lut_float(name) * 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut
