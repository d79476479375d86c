"""Picture imports: labelled (or unlabelled) PNG/TIFF collections, as folders or .zip archives,
into a project, all or nothing.

The layouts (METASPACE gold standard, flat folder + CSV, multi-channel microscopy) are read by
ionsieve_core.imagesets, which also refuses unsafe archives; here the plan becomes datasets, images
and the importing user's labels.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.db import transaction

from ionsieve_core.imagesets.archive import safe_extract
from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imagesets.images import read_image
from ionsieve_core.imagesets.layouts import ImportPlan, plan_import
from ionsieve_core.imagesets.writer import safe_name
from ionsieve_core.imaging.thumbnails import thumbnail_png
from webapp.datasets import labels as labels_service
from webapp.datasets import storage
from webapp.datasets.models import Dataset, IonImage, LabelEvent
from webapp.ingestion import pipeline
from webapp.ingestion.rows import save_images
from webapp.projects.models import Project

log = logging.getLogger(__name__)


class PictureImportError(Exception):
    """Why nothing was imported, worded for a biologist (all problems in one message)."""


def import_images(
    project: Project,
    source: Path,
    user,
    *,
    layout: str | None = None,
    labels_csv: Path | None = None,
    channels: list[str] | None = None,
    progress: Callable[[float, str], None] | None = None,
    inline: bool = False,
) -> list[Dataset]:
    """Import a folder or a .zip; returns the new datasets. Raises PictureImportError."""
    report = progress or (lambda f, m: None)
    work = None
    try:
        root = source
        if source.is_file() and source.suffix.lower() == ".zip":
            work = Path(tempfile.mkdtemp(prefix="ionsieve-import-"))
            report(0.02, "Unpacking the archive")
            root = safe_extract(source, work / "x")
        elif not source.is_dir():
            raise PictureImportError(f"'{source.name}' is neither a folder nor a .zip archive")
        chans = channels or project.channels or None
        plan = plan_import(
            root, layout=layout, labels_csv=labels_csv, channels=chans, classes=project.classes
        )
        _check_labels(project, plan)
        report(0.1, "Reading the images")
        stacks = [_read_dataset(d, i, len(plan.datasets), report) for i, d in enumerate(plan.datasets)]
        report(0.8, "Saving")
        datasets = _save(project, user, plan, stacks, chans)
    except ImageSetError as exc:
        raise PictureImportError(str(exc)) from exc
    except OSError as exc:
        raise PictureImportError(
            f"the server could not read or write the files ({exc.strerror or exc})"
        ) from exc
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    for ds in datasets:  # scored like MSI datasets: active model, or the default score
        pipeline.images_ready(ds, inline=inline)
    return datasets


def _check_labels(project: Project, plan: ImportPlan) -> None:
    problems = []
    for d in plan.datasets:
        for item in d.items:
            if not item.labels:
                continue
            try:
                labels_service.normalise(project, item.labels)
            except labels_service.LabelError as exc:
                problems.append(f"{d.name}/{item.name}: {exc}")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise PictureImportError(
            f"{len(problems)} label problem(s), nothing imported: " + "; ".join(problems[:10]) + more
        )


def _read_dataset(d, n: int, total: int, report) -> tuple[np.ndarray, list[tuple[int, int]]]:
    arrays = []
    for i, item in enumerate(d.items):
        chans = [read_image(p, name=p.name) for p in item.paths]
        a = chans[0] if len(chans) == 1 else np.dstack([c if c.ndim == 2 else c.mean(axis=-1) for c in chans])
        arrays.append(a.astype(np.float32))
        if i % 50 == 0:
            report(0.1 + 0.7 * (n + i / max(1, len(d.items))) / max(1, total), f"Reading {d.name}")
    ndims = {a.ndim for a in arrays}
    if len(ndims) > 1:
        raise PictureImportError(f"dataset {d.name} mixes single- and multi-channel images")
    # Crops of one dataset may differ by a few pixels: pad with NaN (= no data) to the largest.
    H = max(a.shape[0] for a in arrays)
    W = max(a.shape[1] for a in arrays)
    shape = (len(arrays), H, W) + (arrays[0].shape[2:] if arrays[0].ndim == 3 else ())
    stack = np.full(shape, np.nan, dtype=np.float32)
    for i, a in enumerate(arrays):
        stack[i, : a.shape[0], : a.shape[1]] = a
    return stack, [(a.shape[0], a.shape[1]) for a in arrays]


def _save(project: Project, user, plan: ImportPlan, stacks, channels) -> list[Dataset]:
    created: list[Dataset] = []
    try:
        with transaction.atomic():
            for d, (stack, sizes) in zip(plan.datasets, stacks, strict=True):
                ds = Dataset.objects.create(
                    project=project,
                    name=d.name[:200],
                    kind=Dataset.Kind.IMAGES,
                    created_by=user,
                    params={"layout": plan.layout},
                )
                created.append(ds)
                _save_images(ds, plan, d, stack, sizes, channels)
                _save_labels(project, user, ds, d)
    except Exception:
        for ds in created:
            shutil.rmtree(ds.directory, ignore_errors=True)
        raise
    return created


def _save_images(ds: Dataset, plan: ImportPlan, d, stack: np.ndarray, sizes, channels) -> None:
    """The dataset's arrays, thumbnails and image rows; then it is ready."""
    write_arrays(ds, stack, channels, sizes)
    rows = [{"name": item.name} for item in d.items]
    save_images(
        ds,
        rows,
        height=stack.shape[1],
        width=stack.shape[2],
        channels=stack.shape[3] if stack.ndim == 4 else 1,
        sizes=sizes,
        metadata={
            "layout": plan.layout,
            "images": len(rows),
            "channels": channels or [],
            "warnings": plan.warnings,
        },
    )
    ds.status, ds.progress = Dataset.Status.READY, 1.0
    ds.save(update_fields=["status", "progress"])


def _save_labels(project: Project, user, ds: Dataset, d) -> None:
    """The importing user's labels, one call per distinct label (checked by _check_labels)."""
    by_value: dict[str, list[IonImage]] = {}
    images = {im.index: im for im in ds.images.all()}
    for i, item in enumerate(d.items):
        if item.labels:
            value = labels_service.normalise(project, item.labels)
            by_value.setdefault(value, []).append(images[i])
    for value, ims in by_value.items():
        labels_service.set_labels(project, ims, user, value, source=LabelEvent.Source.IMPORT)


def write_arrays(
    ds: Dataset, stack: np.ndarray, channels: list[str] | None, sizes: list[tuple[int, int]]
) -> None:
    storage.save_npy(ds.array_path, stack)
    build = ds.directory / "thumbs.build"
    build.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        (build / f"{i}.png").write_bytes(thumbnail_png(stack[i, :h, :w], channels))
    storage.replace_dir(ds.thumbs_dir, build)


# ---------------------------------------------------------------- uploads through the web
def upload_dir(job_id: int) -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT) / "imports" / str(job_id)


def start_import(
    project: Project,
    user,
    archive,
    *,
    layout: str | None = None,
    labels_csv=None,
    channels: list[str] | None = None,
):
    """Keep the uploaded .zip (and labels CSV) and queue their import as a Job."""
    from webapp.jobs.dispatch import dispatch
    from webapp.jobs.models import Job

    job = Job.objects.create(
        project=project, kind=Job.Kind.IMPORT, created_by=user, message=f"Importing {archive.name}"[:300]
    )
    folder = upload_dir(job.pk)
    # The archive keeps its (sanitised) name: a collection at the zip's root is named after it.
    zip_name = safe_name(Path(archive.name).stem) + ".zip"
    storage.store_file(archive, folder / "archive" / zip_name)
    if labels_csv is not None:
        storage.store_file(labels_csv, folder / "labels.csv")
    (folder / "options.json").write_text(
        json.dumps({"layout": layout, "channels": channels, "zip": zip_name})
    )
    dispatch(job)
    return job


def run_import_job(job) -> str:
    folder = upload_dir(job.pk)
    if not (folder / "options.json").exists():
        return "The upload was removed."
    options = json.loads((folder / "options.json").read_text())
    archive = folder / "archive" / options["zip"]
    labels_csv = folder / "labels.csv"
    try:
        datasets = import_images(
            job.project,
            archive,
            job.created_by,
            layout=options.get("layout"),
            labels_csv=labels_csv if labels_csv.exists() else None,
            channels=options.get("channels"),
            progress=job.report,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    job.target_id = datasets[0].pk if datasets else None
    job.save(update_fields=["target_id"])
    return f"{len(datasets)} dataset(s), {sum(d.image_count for d in datasets):,} images imported"
