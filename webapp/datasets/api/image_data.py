"""Raw numbers behind the image detail page: an image's values at native resolution (float32,
base64: 2,000 x 2,000 pixels are 21 MB where JSON lists of numbers took ~60 MB), the dataset's
TIC and the dataset's mean spectrum. The probability history is added by
classifier/api/image_data.py, which sits above this app."""

from __future__ import annotations

import base64
import math

import numpy as np
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from ionsieve_core.imaging.scaling import display_stats
from webapp.datasets.access import dataset_for
from webapp.datasets.api.serializers import SpectrumSerializer
from webapp.datasets.models import Dataset, IonImage
from webapp.datasets.thumbnails import CHANNEL_COLOURS, FALLBACK

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


def image_channels(image: IonImage) -> np.ndarray | None:
    """The image's values as (channels, height, width) float32, at native resolution."""
    ds = image.dataset
    if not ds.array_path.exists():
        return None
    stack = np.load(ds.array_path, mmap_mode="r")
    if image.index >= stack.shape[0]:
        return None
    a = np.asarray(stack[image.index], dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    elif a.shape[-1] == ds.channels:
        a = np.moveaxis(a, -1, 0)  # pictures are stored (h, w, c)
    if image.height and image.width and a.shape[1] >= image.height and a.shape[2] >= image.width:
        a = a[:, : image.height, : image.width]  # images of mixed sizes are padded in the stack
    return np.ascontiguousarray(a)


def channel_names(image: IonImage, n: int) -> list[str]:
    names = list(image.dataset.project.channels or [])
    return names if len(names) == n else [f"channel {i + 1}" for i in range(n)] if n > 1 else ["intensity"]


def default_colour(name: str, i: int) -> str:
    """A channel's colour as #rrggbb: its name if it names one (the fluorescence convention
    the thumbnails follow), else the thumbnails' fallback order."""
    rgb = CHANNEL_COLOURS.get(name.lower(), FALLBACK[i % len(FALLBACK)])
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def pixels_payload(image: IonImage) -> dict | None:
    """Every pixel of every channel, as base64 float32 (little-endian, row-major, NaN = not
    acquired), with each channel's display statistics (ionsieve_core/imaging/scaling.py)."""
    a = image_channels(image)
    if a is None:
        return None
    names = channel_names(image, a.shape[0])
    return {
        "shape": [int(a.shape[1]), int(a.shape[2])],
        "dtype": "float32",
        "channels": [
            {
                "name": name,
                "colour": default_colour(name, i),
                "values": base64.b64encode(a[i].astype("<f4").tobytes()).decode("ascii"),
                **display_stats(a[i]),
            }
            for i, name in enumerate(names)
        ],
    }


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
    """The image's values at native resolution and its dataset's TIC (block-averaged: a small
    side figure), ready for JSON."""
    pixels = pixels_payload(image)
    tic = tic_values(image.dataset)
    tic_small, tic_factor = block_mean(tic) if tic is not None else (None, 1)
    return {
        "id": image.pk,
        "name": image.display_name,
        "mz": image.mz,
        "shape": pixels["shape"] if pixels else None,
        "downsample": 1,
        "dtype": "float32",
        "channels": pixels["channels"] if pixels else [],
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
        return Response(
            {"mz": [round(float(x), 5) for x in mz], "intensity": [float(f"{x:.6g}") for x in intensity]}
        )
