"""A READY dataset without the MSI pipeline: random images, TIC, spectrum, thumbnails, predictions."""

from __future__ import annotations

import numpy as np

from classifier.scoring import store_predictions
from webapp.datasets.models import Dataset
from webapp.ingestion.rows import save_images
from webapp.projects.models import Project, Task

try:
    from ionsieve_core.imaging.thumbnails import to_thumbnail_png
except ImportError:  # pragma: no cover - the msi package is written in parallel
    to_thumbnail_png = None


def _png(img: np.ndarray) -> bytes:
    if to_thumbnail_png is not None:
        return to_thumbnail_png(img, size=64)
    import io

    from PIL import Image

    a = np.nan_to_num(img)
    a = (255 * (a - a.min()) / max(float(np.ptp(a)), 1e-9)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def make_ready_dataset(
    project: Project,
    n: int = 60,
    shape: tuple[int, int] = (16, 20),
    name: str = "Synthetic",
    probs: np.ndarray | list | None = None,
    seed: int = 0,
    user=None,
    thumbnails: bool = True,
) -> Dataset:
    """`probs`: first-class probabilities (binary) or an (n, k) array; random when None."""
    rng = np.random.default_rng(seed)
    h, w = shape
    ds = Dataset.objects.create(
        project=project,
        name=name,
        kind=Dataset.Kind.IMZML,
        created_by=user,
        params={"ppm": 3.0, "top": n, "tic": False},
    )
    ds.directory.mkdir(parents=True, exist_ok=True)
    stack = rng.random((n, h, w), dtype=np.float32)
    stack[:, 0, 0] = np.nan  # one pixel not acquired, as in real data
    np.save(ds.array_path, stack)
    np.save(ds.tic_path, np.nansum(stack, axis=0) * np.where(np.isnan(stack[0]), np.nan, 1))
    mz = np.linspace(100, 1000, 9000)
    np.savez(ds.spectrum_path, mz=mz, intensity=rng.random(mz.size))
    if thumbnails:
        ds.thumbs_dir.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            ds.thumb_path(i).write_bytes(_png(stack[i]))
    rows = [{"mz": round(100.0 + 13.7 * i, 4), "name": f"{100.0 + 13.7 * i:.4f}"} for i in range(n)]
    metadata = {
        "grid": [h, w],
        "mz_range": [100.0, 1000.0],
        "storage": "continuous",
        "spectrum_type": "centroid",
        "instrument": {"model": "Test instrument"},
        "spectra": h * w - 1,
        "warnings": [],
    }
    save_images(ds, rows, height=h, width=w, metadata=metadata)
    ds.status, ds.progress = Dataset.Status.READY, 1.0
    ds.save(update_fields=["status", "progress"])
    set_probabilities(project, ds, probs if probs is not None else rng.random(n))
    return ds


def set_probabilities(project: Project, ds: Dataset, probs, version=None) -> np.ndarray:
    """Store predictions (default score when version is None) and return the (n, k) array."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        if project.task == Task.BINARY:
            p = np.column_stack([p, 1 - p])
        else:
            raise ValueError("give an (n, k) array for multi-class projects")
    images = list(ds.images.order_by("index"))
    store_predictions(project, images, p, np.full(len(project.classes), 0.5), version)
    return p
