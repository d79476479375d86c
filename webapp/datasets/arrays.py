"""A dataset's image array file, read back as per-image arrays (for training, scoring, snapshots)."""

from __future__ import annotations

import warnings

import numpy as np

from webapp.datasets.models import Dataset, IonImage


def load_stack(dataset: Dataset) -> np.ndarray:
    """The dataset's image array, memory-mapped: (k, H, W) or (k, H, W, C), NaN padded."""
    return np.load(dataset.array_path, mmap_mode="r")


def dataset_context(dataset: Dataset, stack: np.ndarray | None = None) -> np.ndarray:
    """What 'sample' looks like in this dataset: the TIC image, or for imported pictures
    the mean image."""
    if dataset.tic_path.exists():
        return np.load(dataset.tic_path)
    stack = load_stack(dataset) if stack is None else stack
    with warnings.catch_warnings():  # padding pixels are NaN in every image: their mean is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.asarray(stack[: min(len(stack), 2000)], dtype=np.float32), axis=0)
    return mean if mean.ndim == 2 else mean.mean(axis=-1)


def image_array(stack: np.ndarray, im: IonImage) -> np.ndarray:
    a = np.asarray(stack[im.index], dtype=np.float32)
    if im.height and im.width:
        a = a[: im.height, : im.width]
    return a


def arrays_for(dataset: Dataset, images: list[IonImage], with_context: bool = False):
    stack = load_stack(dataset)
    arrays = [image_array(stack, im) for im in images]
    contexts = None
    if with_context:
        ctx = dataset_context(dataset, stack)
        contexts = [ctx[: a.shape[0], : a.shape[1]] for a in arrays]
    return arrays, contexts
