"""imzML ingestion: an imzML/ibd pair on disk -> ion images, TIC, mean spectrum, thumbnails, rows.

In stages, each a function: read the metadata -> choose the ions -> extract the images ->
store the arrays -> render thumbnails -> save the rows. Idempotent: a re-run replaces the
derived files and updates image rows in place (labels on images that keep their index
survive), never duplicates.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from ionsieve_core.imaging.thumbnails import iter_thumbnails_png
from ionsieve_core.msi import MSIError, check_in_range, extract, parse_mz_list, read_metadata, top_peaks
from ionsieve_core.msi.extract import Extraction
from ionsieve_core.msi.mzlist import IonList
from ionsieve_core.msi.reader import ImzMLMeta
from webapp.datasets import storage
from webapp.datasets.models import Dataset
from webapp.ingestion.rows import save_images

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


@dataclass
class Ions:
    """The m/z values to image: from the dataset's m/z list, or the strongest peaks."""

    mzs: np.ndarray
    listed: IonList | None  # None: top peaks
    progress_start: float  # where the extraction's progress starts (after a peak-finding pass)


@dataclass
class Extracted:
    """What the extraction pass left: the images are on disk (dataset.array_path)."""

    result: Extraction
    keep: list[int]  # indexes into Ions.mzs that lie in the acquired m/z range, list order
    mz_range: tuple[float, float]


def _ingest(dataset: Dataset, ppm: float, top: int, tic_norm: bool, progress: Progress) -> list[str]:
    meta = read_meta(dataset, progress)
    ions = choose_ions(dataset, meta, ppm, top, progress)
    extracted = extract_images(dataset, meta, ions, ppm, tic_norm, progress)
    warnings = store_arrays(dataset, ions, extracted)
    progress(0.92, "Making thumbnails")
    render_thumbnails(dataset)
    save_rows(dataset, meta, ions, extracted, warnings, ppm=ppm, top=top, tic_norm=tic_norm)
    return warnings


def read_meta(dataset: Dataset, progress: Progress) -> ImzMLMeta:
    """Stage 1: the files are there, and their spectrum index."""
    if not dataset.imzml_path.exists():
        raise IngestError("the .imzML file is missing")
    if not dataset.ibd_path.exists():
        raise IngestError("the .ibd file is missing: upload the .imzML and .ibd files together")
    progress(0.01, "Reading the imzML metadata")
    return read_metadata(dataset.imzml_path, dataset.ibd_path, max_pixels=settings.IONSIEVE_MAX_PIXELS)


def choose_ions(dataset: Dataset, meta: ImzMLMeta, ppm: float, top: int, progress: Progress) -> Ions:
    """Stage 2: the m/z list, or the `top` strongest peaks of the mean spectrum.

    Without a list the .ibd is read twice: the extraction windows come from the mean spectrum,
    which is known only once every spectrum was read; one pass would have to keep every
    spectrum (many GB) until then. The first pass images nothing (an empty m/z list).
    """
    if dataset.mz_list_path.exists():
        listed = parse_mz_list(dataset.mz_list_path)
        return Ions(np.array([i.mz for i in listed], dtype=np.float64), listed, 0.0)
    progress(0.02, "Computing the mean spectrum to find the strongest peaks")
    scan = extract(meta, np.empty(0), ppm=ppm, progress=lambda f: progress(0.02 + 0.28 * f, "Finding peaks"))
    mzs = top_peaks(*scan.mean_spectrum, n=top, ppm=ppm)
    if mzs.size == 0:
        raise IngestError("no peaks were found in the mean spectrum: are all intensities zero?")
    return Ions(mzs, None, 0.3)


def extract_images(
    dataset: Dataset, meta: ImzMLMeta, ions: Ions, ppm: float, tic_norm: bool, progress: Progress
) -> Extracted:
    """Stage 3: one pass over the spectra, written straight into the final .npy through a
    memmap so that the images are never held twice."""
    h, w = meta.shape
    k = int(ions.mzs.size)
    if k * h * w * 4 > settings.IONSIEVE_MAX_IMAGE_ARRAY_BYTES:
        raise IngestError(
            f"{k:,} ion images of {h:,} x {w:,} pixels would need {k * h * w * 4 / 1e9:.1f} GB: "
            "choose fewer ions"
        )
    dataset.directory.mkdir(parents=True, exist_ok=True)
    start = ions.progress_start

    def step(f: float) -> None:
        progress(start + (0.9 - start) * f, "Extracting ion images")

    with storage.atomic_path(dataset.array_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(k, h, w))
        result = extract(meta, ions.mzs, ppm=ppm, tic_normalise=tic_norm, progress=step, out=out)
        mean_mz = result.mean_spectrum[0]
        # The acquired m/z range, whether or not every bin holds signal.
        mz_range = (float(mean_mz.min()), float(mean_mz.max())) if mean_mz.size else (np.nan, np.nan)
        keep = _in_range(ions, mz_range)  # raises before the array is kept if no ion is in range
        # No flush (msync): what is written through a shared map is in the page cache, where
        # every later reader finds it, and the kernel writes it back as it does for every
        # other file saved here; forcing it to disk took ~0.5 s of a 10 s import at 100,000
        # px x 500 ions. The result's images are `out`: dropped so that the map closes and
        # its pages leave the RSS before the thumbnails and the scoring read the file.
        result.images = np.empty((0, h, w), np.float32)
        del out
    return Extracted(result, keep, mz_range)


def _in_range(ions: Ions, mz_range: tuple[float, float]) -> list[int]:
    if ions.listed is None:
        return list(range(ions.mzs.size))
    # Slack of one binned-spectrum step: the mean spectrum of processed data is binned.
    slack = 1e-3
    # A set: looked up in the list, 500 ions took ~0.1 s of dataclass comparisons.
    inside = set(check_in_range(ions.listed, mz_range[0] * (1 - slack), mz_range[1] * (1 + slack)))
    return [i for i, ion in enumerate(ions.listed) if ion in inside]


def store_arrays(dataset: Dataset, ions: Ions, extracted: Extracted) -> list[str]:
    """Stage 4: drop out-of-range ions from the stored images; the TIC and mean spectrum."""
    result, keep, k = extracted.result, extracted.keep, int(ions.mzs.size)
    warnings = list(result.warnings)
    if len(keep) < k:
        full = np.load(dataset.array_path, mmap_mode="r")
        storage.save_npy(dataset.array_path, np.ascontiguousarray(full[keep]))  # list order kept
        del full
        warnings.append(
            f"{k - len(keep):,} m/z values of the list lie outside the dataset's range and were skipped"
        )
    storage.save_npy(dataset.tic_path, result.tic)
    mean_mz, mean_int = result.mean_spectrum
    with storage.atomic_path(dataset.spectrum_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mz=mean_mz, intensity=mean_int)
    return warnings


def render_thumbnails(dataset: Dataset) -> None:
    """Stage 5: one PNG per stored image, built aside and swapped in whole."""
    images = np.load(dataset.array_path, mmap_mode="r")
    build = dataset.directory / "thumbs.build"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir()

    def render(lo: int, hi: int) -> None:
        # Batch-wise over the stack (several times faster than image by image), in batches of
        # half the default size: the two threads' batches hold what one did (~100 MB).
        for n, png in enumerate(iter_thumbnails_png(images[lo:hi], batch_values=4 << 20), start=lo):
            (build / f"{n}.png").write_bytes(png)

    # The second half in a helper thread: numpy and zlib release the GIL, so on two cores the
    # 500 thumbnails of 100,000 px take ~0.7 s instead of ~1.3 s. Each thumbnail is the one it
    # is alone (iter_thumbnails_png's batches are independent).
    half = (len(images) + 1) // 2
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails") as pool:
        second = pool.submit(render, half, len(images))
        render(0, half)
        second.result()
    storage.replace_dir(dataset.thumbs_dir, build)


def save_rows(
    dataset: Dataset,
    meta: ImzMLMeta,
    ions: Ions,
    extracted: Extracted,
    warnings: list[str],
    *,
    ppm: float,
    top: int,
    tic_norm: bool,
) -> None:
    """Stage 6: one IonImage row per kept ion, and the dataset's facts."""
    rows = [_row(ions, src) for src in extracted.keep]
    h, w = meta.shape
    metadata = {
        "spectra": meta.n_spectra,
        "pixels_acquired": int(extracted.result.acquired_mask.sum()),
        "grid": [h, w],
        "mz_range": list(extracted.mz_range),
        "storage": "continuous" if meta.continuous else "processed",
        "spectrum_type": {True: "centroid", False: "profile", None: "unknown"}[meta.centroid],
        "mz_dtype": str(meta.mz_dtype),
        "intensity_dtype": str(meta.int_dtype),
        "instrument": meta.instrument,
        "ppm": ppm,
        "tic_normalised": tic_norm,
        "ion_source": "m/z list" if ions.listed is not None else f"top {top} peaks",
        "warnings": warnings,
    }
    save_images(dataset, rows, height=h, width=w, metadata=metadata)


def _row(ions: Ions, src: int) -> dict:
    if ions.listed is not None:
        ion = ions.listed[src]
        return dict(mz=float(ion.mz), name=ion.name, formula=ion.formula, adduct=ion.adduct)
    mz = ions.mzs[src]
    return dict(mz=float(mz), name=f"{mz:.4f}", formula="", adduct="")
