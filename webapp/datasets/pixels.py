"""Raw numbers behind the image detail page: an image's values at native resolution (float32,
base64: 2,000 x 2,000 pixels are 21 MB where JSON lists of numbers took ~60 MB) with the
display statistics the page scales them by (ionsieve_core/imaging/scaling.py: the browser
only applies them), the dataset's TIC and the dataset's mean spectrum. The probability
history is added by the classifier app, which sits above this one."""

from __future__ import annotations

import base64

import numpy as np

from ionsieve_core.imaging.downsample import block_mean, downsample_spectrum, grid_json
from ionsieve_core.imaging.scaling import display_stats, equalization_table
from ionsieve_core.imaging.thumbnails import channel_colour
from webapp.datasets.models import Dataset, IonImage


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
    """A channel's colour as #rrggbb: the thumbnails' (its name if it names one, else their
    fallback order)."""
    return "#" + "".join(f"{round(c * 255):02x}" for c in channel_colour(name, i))


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.asarray(a).astype(dtype).tobytes()).decode("ascii")


def _channel(values: np.ndarray, name: str, i: int, equalization: bool) -> dict:
    channel = {
        "name": name,
        "colour": default_colour(name, i),
        "values": _b64(values, "<f4"),
        **display_stats(values),
    }
    if equalization:
        table, distinct = equalization_table(values)
        channel["equalization"] = {"distinct": distinct, "values": _b64(table, "<f8")}
    return channel


def pixels_payload(image: IonImage, equalization: bool = True) -> dict | None:
    """Every pixel of every channel, as base64 float32 (little-endian, row-major, NaN = not
    acquired), with each channel's display statistics and, for the page, its equalisation
    table (base64 float64; the REST API's ImageData leaves it out, its schema unchanged)."""
    a = image_channels(image)
    if a is None:
        return None
    names = channel_names(image, a.shape[0])
    return {
        "shape": [int(a.shape[1]), int(a.shape[2])],
        "dtype": "float32",
        "channels": [_channel(a[i], name, i, equalization) for i, name in enumerate(names)],
    }


def tic_values(dataset: Dataset) -> np.ndarray | None:
    if not dataset.tic_path.exists():
        return None
    tic = np.asarray(np.load(dataset.tic_path), dtype=np.float64)
    return tic if tic.ndim == 2 else None


def spectrum(dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    if not dataset.spectrum_path.exists():
        return None
    with np.load(dataset.spectrum_path) as f:
        return downsample_spectrum(f["mz"], f["intensity"])


def image_payload(image: IonImage) -> dict:
    """The image's values at native resolution and its dataset's TIC (block-averaged: a small
    side figure), ready for JSON (the REST API's ImageData)."""
    pixels = pixels_payload(image, equalization=False)
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
