"""Grouped cross-validation: a dataset's images are never on both sides of a split,
because images of one dataset share its sample, matrix and instrument and would leak."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold


def grouped_folds(
    groups, n_folds: int, y: np.ndarray | None = None, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) pairs. Fewer groups than folds -> one fold per group; a single
    group -> a (stratified when y is a class vector) split within it, which cannot measure
    generalisation to new datasets."""
    groups = np.asarray(groups).astype(str)
    n = len(groups)
    if n < 2:
        raise ValueError("need at least 2 images to cross-validate")
    n_groups = len(np.unique(groups))
    if n_groups >= 2:
        k = max(2, min(int(n_folds), n_groups))
        splits = GroupKFold(n_splits=k).split(np.zeros(n), groups=groups)
        return [(np.sort(t), np.sort(v)) for t, v in splits]
    k = max(2, min(int(n_folds), n))
    if y is not None and np.ndim(y) == 1:
        counts = np.unique(np.asarray(y), return_counts=True)[1]
        ks = min(k, int(counts.min()))
        if ks >= 2 and len(counts) > 1:
            splits = StratifiedKFold(n_splits=ks, shuffle=True, random_state=seed).split(np.zeros(n), y)
            return [(np.sort(t), np.sort(v)) for t, v in splits]
    splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))
    return [(np.sort(t), np.sort(v)) for t, v in splits]
