"""Ingestion: an imzML/ibd pair on disk -> ion images, TIC, mean spectrum, thumbnails, rows.

Idempotent: a re-run replaces the derived files and updates image rows in place (labels on
images that keep their index survive), never duplicates.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from ionsieve_core.imaging.scaling import iter_thumbnails_png
from ionsieve_core.msi import MSIError, check_in_range, extract, parse_mz_list, read_metadata, top_peaks
from webapp.datasets import storage
from webapp.datasets.models import Dataset, IonImage

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


class IngestError(Exception):
    """A problem with the user's files, worded for a biologist."""


def _noop(fraction: float, message: str) -> None:
    pass


def ingest(dataset: Dataset, progress: Progress = _noop) -> list[str]:
    """Process the dataset's source files; returns warnings. Raises IngestError."""
    params = dataset.params or {}
    ppm = float(params.get("ppm", 3.0))
    top = int(params.get("top", 500))
    tic_norm = bool(params.get("tic", False))
    try:
        return _ingest(dataset, ppm, top, tic_norm, progress)
    except MSIError as exc:
        raise IngestError(str(exc)) from exc
    except MemoryError as exc:
        raise IngestError("the dataset is too large to process on this server") from exc
    except OSError as exc:
        # Disk full, unwritable media folder...: say what happened, not a traceback.
        raise IngestError(f"the server could not write the results ({exc.strerror or exc})") from exc


def _ingest(dataset: Dataset, ppm: float, top: int, tic_norm: bool, progress: Progress) -> list[str]:
    if not dataset.imzml_path.exists():
        raise IngestError("the .imzML file is missing")
    if not dataset.ibd_path.exists():
        raise IngestError("the .ibd file is missing: upload the .imzML and .ibd files together")
    progress(0.01, "Reading the imzML metadata")
    meta = read_metadata(dataset.imzml_path, dataset.ibd_path, max_pixels=settings.IONSIEVE_MAX_PIXELS)
    h, w = meta.shape
    ions = None
    if dataset.mz_list_path.exists():
        ions = parse_mz_list(dataset.mz_list_path)
        mzs = np.array([i.mz for i in ions], dtype=np.float64)
        first_pass = 0.0
    else:
        progress(0.02, "Computing the mean spectrum to find the strongest peaks")
        scan = extract(
            meta, np.empty(0), ppm=ppm, progress=lambda f: progress(0.02 + 0.28 * f, "Finding peaks")
        )
        mzs = top_peaks(*scan.mean_spectrum, n=top, ppm=ppm)
        first_pass = 0.3
        if mzs.size == 0:
            raise IngestError("no peaks were found in the mean spectrum: are all intensities zero?")
    k = int(mzs.size)
    if k * h * w * 4 > settings.IONSIEVE_MAX_IMAGE_ARRAY_BYTES:
        raise IngestError(
            f"{k:,} ion images of {h:,} x {w:,} pixels would need {k * h * w * 4 / 1e9:.1f} GB: "
            "choose fewer ions"
        )
    directory = dataset.directory
    directory.mkdir(parents=True, exist_ok=True)

    def step(f: float) -> None:
        progress(first_pass + (0.9 - first_pass) * f, "Extracting ion images")

    # Write straight into the final .npy through a memmap so the images are never held twice.
    with storage.atomic_path(dataset.array_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(k, h, w))
        result = extract(meta, mzs, ppm=ppm, tic_normalise=tic_norm, progress=step, out=out)
        mean_mz, mean_int = result.mean_spectrum
        # The acquired m/z range, whether or not every bin holds signal.
        mz_min = float(mean_mz.min()) if mean_mz.size else float("nan")
        mz_max = float(mean_mz.max()) if mean_mz.size else float("nan")
        if ions is not None:
            # Slack of one binned-spectrum step: the mean spectrum of processed data is binned.
            slack = 1e-3
            in_range = check_in_range(ions, mz_min * (1 - slack), mz_max * (1 + slack))  # raises if none
            keep = [i for i, ion in enumerate(ions) if ion in in_range]
        else:
            keep = list(range(k))
        out.flush()
        del out
    warnings = list(result.warnings)
    if len(keep) < k:
        # Drop the out-of-range ions from the stored array, keeping the list order.
        full = np.load(dataset.array_path, mmap_mode="r")
        storage.save_npy(dataset.array_path, np.ascontiguousarray(full[keep]))
        del full
        warnings.append(
            f"{k - len(keep):,} m/z values of the list lie outside the dataset's range and were skipped"
        )
    storage.save_npy(dataset.tic_path, result.tic)
    with storage.atomic_path(dataset.spectrum_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mz=mean_mz, intensity=mean_int)

    progress(0.92, "Making thumbnails")
    images = np.load(dataset.array_path, mmap_mode="r")
    build = directory / "thumbs.build"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir()
    # the whole stack at once: a batch-wise renderer is several times faster than one by one
    for n, png in enumerate(iter_thumbnails_png(images)):
        (build / f"{n}.png").write_bytes(png)
    storage.replace_dir(dataset.thumbs_dir, build)

    rows = []
    for src in keep:
        if ions is not None:
            ion = ions[src]
            rows.append(dict(mz=float(ion.mz), name=ion.name, formula=ion.formula, adduct=ion.adduct))
        else:
            rows.append(dict(mz=float(mzs[src]), name=f"{mzs[src]:.4f}", formula="", adduct=""))
    metadata = {
        "spectra": meta.n_spectra,
        "pixels_acquired": int(result.acquired_mask.sum()),
        "grid": [h, w],
        "mz_range": [mz_min, mz_max],
        "storage": "continuous" if meta.continuous else "processed",
        "spectrum_type": {True: "centroid", False: "profile", None: "unknown"}[meta.centroid],
        "mz_dtype": str(meta.mz_dtype),
        "intensity_dtype": str(meta.int_dtype),
        "instrument": meta.instrument,
        "ppm": ppm,
        "tic_normalised": tic_norm,
        "ion_source": "m/z list" if ions is not None else f"top {top} peaks",
        "warnings": warnings,
    }
    save_images(dataset, rows, height=h, width=w, metadata=metadata)
    return warnings


@transaction.atomic
def save_images(
    dataset: Dataset,
    rows: list[dict],
    *,
    height: int,
    width: int,
    metadata: dict,
    channels: int = 1,
    sizes: list[tuple[int, int]] | None = None,
) -> None:
    """Create or update one IonImage per row (by index), delete rows beyond the new count."""
    existing = {im.index: im for im in IonImage.objects.filter(dataset=dataset)}
    to_create, to_update = [], []
    for n, row in enumerate(rows):
        h, w = sizes[n] if sizes else (height, width)
        im = existing.get(n)
        fields = dict(
            mz=row.get("mz"),
            name=row.get("name", ""),
            formula=row.get("formula", ""),
            adduct=row.get("adduct", ""),
            height=h,
            width=w,
        )
        if im is None:
            to_create.append(IonImage(dataset=dataset, index=n, **fields))
        else:
            changed = any(getattr(im, k) != v for k, v in fields.items())
            if changed:
                for k, v in fields.items():
                    setattr(im, k, v)
                # The image changed: its old prediction no longer applies.
                im.probability = im.probabilities = im.uncertainty = None
                im.predicted = ""
                to_update.append(im)
    IonImage.objects.filter(dataset=dataset, index__gte=len(rows)).delete()
    IonImage.objects.bulk_create(to_create, batch_size=1000)
    IonImage.objects.bulk_update(
        to_update,
        [
            "mz",
            "name",
            "formula",
            "adduct",
            "height",
            "width",
            "probability",
            "probabilities",
            "uncertainty",
            "predicted",
        ],
        batch_size=1000,
    )
    dataset.height, dataset.width, dataset.channels = height, width, channels
    dataset.image_count = len(rows)
    dataset.metadata = metadata
    dataset.revision += 1
    dataset.save(
        update_fields=["height", "width", "channels", "image_count", "metadata", "revision", "updated_at"]
    )
    if len(to_create) >= 1000 and connection.vendor == "postgresql":
        # Fresh statistics: before autovacuum runs, the planner would think the table is tiny.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {IonImage._meta.db_table}")
