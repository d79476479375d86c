"""Peak picking on a mean spectrum: the default list of ions to image."""

from __future__ import annotations

import bisect

import numpy as np


def top_peaks(mean_mz: np.ndarray, mean_intensity: np.ndarray, n: int = 500, ppm: float = 3.0) -> np.ndarray:
    """The `n` strongest local maxima of a mean spectrum, as m/z values sorted ascending.

    Maxima closer than `ppm` (relative to their m/z) are merged, keeping the stronger one, so
    two returned ions never share most of an extraction window. Ascending m/z is returned
    because that is how people read ion lists; strength decided only who made the cut.
    """
    mz = np.asarray(mean_mz, dtype=np.float64)
    y = np.nan_to_num(np.asarray(mean_intensity, dtype=np.float64))
    if mz.size == 0 or n <= 0:
        return np.zeros(0)
    order = np.argsort(mz, kind="stable")
    mz, y = mz[order], y[order]
    padded = np.concatenate([[-np.inf], y, [-np.inf]])
    # rising edge strictly, falling edge or plateau: one maximum per plateau
    is_max = (y > padded[:-2]) & (y >= padded[2:]) & (y > 0)
    cand = np.flatnonzero(is_max)
    cand = cand[np.argsort(-y[cand], kind="stable")]
    kept: list[float] = []
    tol = ppm * 1e-6
    for i in cand:
        m = float(mz[i])
        j = bisect.bisect_left(kept, m)
        if j < len(kept) and kept[j] - m <= tol * m:
            continue
        if j > 0 and m - kept[j - 1] <= tol * m:
            continue
        kept.insert(j, m)
        if len(kept) >= n:
            break
    return np.asarray(kept, dtype=np.float64)
