"""The 8 labelled METASPACE example PNGs as scalar ion images (test/bench helper only).

Some are viridis renders: each pixel is mapped back to the position of the nearest viridis
colour (0..1); greyscale ones are averaged; transparent pixels become NaN (not acquired).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.shared_data import SHARED_DATA

EXAMPLES = SHARED_DATA / "ionimages" / "metaspace_examples"


def _viridis() -> np.ndarray:
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255.0


def png_to_scalar(path: Path) -> np.ndarray:
    from skimage import io

    a = io.imread(path).astype(np.float32)
    if a.ndim == 2:
        return a
    alpha = None
    if a.shape[2] in (2, 4):
        alpha = a[..., -1]
        a = a[..., :-1]
    if a.shape[2] == 1 or np.allclose(a[..., 0], a[..., 1]) and np.allclose(a[..., 1], a[..., 2]):
        out = a.mean(axis=2)
    else:
        lut = _viridis().astype(np.float32)
        flat = a.reshape(-1, 3)
        # |a - l|^2 = |a|^2 - 2 a.l + |l|^2; the first term does not change the argmin.
        idx = np.concatenate([(lut * lut).sum(1)[None, :] - 2 * flat[i:i + 65536] @ lut.T
                              for i in range(0, len(flat), 65536)]).argmin(axis=1)
        out = idx.reshape(a.shape[:2]).astype(np.float32) / 255.0
    if alpha is not None:
        out = np.where(alpha > 0, out, np.nan)
    return out


def load_examples() -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """(images, labels 0 = off / 1 = on, file names); empty when the folder is missing."""
    images, labels, names = [], [], []
    for label, sub in ((0, "off"), (1, "on")):
        for p in sorted((EXAMPLES / sub).glob("*.png")):
            images.append(png_to_scalar(p))
            labels.append(label)
            names.append(f"{sub}/{p.name}")
    return images, np.asarray(labels), names
