"""Raw numbers behind the image detail page: an image's values, the dataset's TIC and the
dataset's mean spectrum (all small enough for a browser). The probability history is added
by classifier/api/image_data.py, which sits above this app."""
from __future__ import annotations

import math

import numpy as np
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets.access import dataset_for
from webapp.datasets.api.serializers import SpectrumSerializer
from webapp.datasets.models import Dataset, IonImage

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
    return [[None if not math.isfinite(x) else float(f"{x:.6g}") for x in row] for row in np.asarray(a).tolist()]


def image_values(image: IonImage) -> np.ndarray | None:
    """The image's 2-D values (channels averaged for multi-channel pictures)."""
    ds = image.dataset
    if not ds.array_path.exists():
        return None
    stack = np.load(ds.array_path, mmap_mode="r")
    if image.index >= stack.shape[0]:
        return None
    a = np.asarray(stack[image.index], dtype=np.float64)
    if a.ndim == 3:
        # (h, w, c) or (c, h, w): average the channel axis.
        a = a.mean(axis=-1) if a.shape[-1] == ds.channels else a.mean(axis=0)
    if image.height and image.width and a.shape[0] >= image.height and a.shape[1] >= image.width:
        a = a[: image.height, : image.width]  # images of mixed sizes are padded in the stack
    return a


def tic_values(dataset: Dataset) -> np.ndarray | None:
    if not dataset.tic_path.exists():
        return None
    tic = np.asarray(np.load(dataset.tic_path), dtype=np.float64)
    return tic if tic.ndim == 2 else None


def downsample_spectrum(mz: np.ndarray, intensity: np.ndarray, n: int = MAX_SPECTRUM_POINTS):
    """At most `n` points, keeping the maximum of each bin so peaks never disappear."""
    mz, intensity = np.asarray(mz, dtype=np.float64), np.asarray(intensity, dtype=np.float64)
    if mz.size <= n:
        return mz, intensity
    size = math.ceil(mz.size / n)
    pad = (-mz.size) % size
    padded = np.concatenate([intensity, np.full(pad, -np.inf)]).reshape(-1, size)
    keep = np.arange(padded.shape[0]) * size + padded.argmax(axis=1)
    return mz[keep], intensity[keep]


def spectrum(dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    if not dataset.spectrum_path.exists():
        return None
    with np.load(dataset.spectrum_path) as f:
        return downsample_spectrum(f["mz"], f["intensity"])


def image_payload(image: IonImage) -> dict:
    """The image's values (block-averaged) and its dataset's TIC, ready for JSON."""
    values = image_values(image)
    small, factor = block_mean(values) if values is not None else (None, 1)
    tic = tic_values(image.dataset)
    tic_small, tic_factor = block_mean(tic) if tic is not None else (None, 1)
    return {
        "id": image.pk,
        "name": image.display_name,
        "mz": image.mz,
        "shape": list(values.shape) if values is not None else None,
        "downsample": factor,
        "values": grid_json(small) if small is not None else None,
        "tic": grid_json(tic_small) if tic_small is not None else None,
        "tic_downsample": tic_factor,
    }


class DatasetSpectrum(APIView):
    """The dataset's mean spectrum, at most 5,000 points (each the maximum of its m/z bin)."""

    @extend_schema(responses={200: SpectrumSerializer})
    def get(self, request, pk: int):
        dataset = dataset_for(request.user, pk)
        result = spectrum(dataset)
        if result is None:
            raise Http404("This dataset has no mean spectrum.")
        mz, intensity = result
        return Response({"mz": [round(float(x), 5) for x in mz],
                         "intensity": [float(f"{x:.6g}") for x in intensity]})
