"""The upload checks (written once: the page, the API, resumable uploads and the command line
all call them), a dataset from an upload, and its processing as a Job."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from webapp.datasets import storage
from webapp.datasets.models import Dataset
from webapp.ingestion import pipeline
from webapp.ingestion.imzml import IngestError, Progress, ingest
from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job
from webapp.projects.models import Project

log = logging.getLogger(__name__)


class UploadError(Exception):
    """Refused upload, worded for a biologist."""


def sentence(text: str) -> str:
    """An error message as a sentence (capital first, full stop), as the API and commands say it."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# ---------------------------------------------------------------------- checks
def check_upload_names(imzml_name: str, ibd_name: str | None) -> None:
    if not imzml_name.lower().endswith(".imzml"):
        raise UploadError(f"'{imzml_name}' is not an .imzML file")
    if ibd_name is None:
        raise UploadError("the .ibd file is missing: upload the .imzML and .ibd files together")
    if not ibd_name.lower().endswith(".ibd"):
        raise UploadError(f"'{ibd_name}' is not an .ibd file")


def check_size(total: int) -> None:
    limit = settings.IONSIEVE_MAX_UPLOAD_BYTES
    if total > limit:
        raise UploadError(
            f"the files are {total / 1e9:.1f} GB, above this server's limit of {limit / 1e9:.1f} GB"
        )


def check_imzml_upload(imzml_name: str, ibd_name: str | None, total: int) -> None:
    """An imzML/ibd pair (and m/z list) of `total` bytes: the page, API and command line's check."""
    check_upload_names(imzml_name, ibd_name)
    check_size(total)


def check_archive(name: str, size: int) -> None:
    """A .zip of pictures to import."""
    if not name.lower().endswith(".zip"):
        raise UploadError(f"'{name}' is not a .zip archive")
    check_size(size)


def parse_channels(text: str | None) -> list[str] | None:
    """'red, green,blue' -> ['red', 'green', 'blue']; None when empty."""
    return [c.strip() for c in (text or "").split(",") if c.strip()] or None


# ---------------------------------------------------------------------- datasets from uploads
def create_imzml_dataset(
    project: Project,
    user,
    *,
    name: str,
    imzml,
    ibd,
    mz_list=None,
    ppm: float = 3.0,
    top: int = 500,
    tic: bool = False,
) -> Dataset:
    """Store the uploaded files (UploadedFile or Path) and create the Dataset row."""
    if not (0 < ppm <= 1000):
        raise UploadError("the m/z tolerance must be between 0 and 1,000 ppm")
    if not (1 <= top <= 100_000):
        raise UploadError("the number of peaks must be between 1 and 100,000")
    dataset = Dataset.objects.create(
        project=project,
        name=name[:200],
        kind=Dataset.Kind.IMZML,
        created_by=user,
        params={"ppm": ppm, "top": top, "tic": tic},
    )
    try:
        storage.store_file(imzml, dataset.imzml_path)
        storage.store_file(ibd, dataset.ibd_path)
        if mz_list is not None:
            storage.store_file(mz_list, dataset.mz_list_path)
    except OSError as exc:
        storage.delete_dataset(dataset)
        raise UploadError(f"the server could not store the files ({exc.strerror or exc})") from exc
    return dataset


def dataset_from_upload(project: Project, user, files: dict, options: dict) -> Dataset:
    """The dataset of uploaded files (`files`: imzml, ibd, optional mz_list) with its processing
    queued, both or neither; `options`: name, ppm, top, tic as the API validated them."""
    with transaction.atomic():
        dataset = create_imzml_dataset(
            project,
            user,
            name=options.get("name") or files["imzml"].name.rsplit(".", 1)[0],
            imzml=files["imzml"],
            ibd=files["ibd"],
            mz_list=files.get("mz_list"),
            ppm=options["ppm"],
            top=options["top"],
            tic=options["tic"],
        )
        start_ingestion(dataset, user)
    return dataset


def start_ingestion(dataset: Dataset, user=None) -> Job:
    """Queue the dataset's ingestion (shown to users as "processing") on the ingest queue; the job
    row is what pages poll."""
    active = Job.objects.filter(kind=Job.Kind.INGEST, target_id=dataset.pk, status__in=Job.ACTIVE).first()
    if active is not None:  # already queued or running: a second run would race it on the same files
        return active
    job = Job.objects.create(
        project=dataset.project, kind=Job.Kind.INGEST, target_id=dataset.pk, created_by=user
    )
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.UPLOADED, progress=0, error="")
    dispatch(job)
    return job


def run_ingestion(dataset: Dataset, job: Job | None = None, inline: bool = False, report=None) -> None:
    """Ingest now, in this process, then start the first scoring (pipeline.images_ready).
    Raises IngestError after recording the failure."""
    for stale in dataset.directory.glob(".*.part"):  # half-written files of a worker killed mid-run
        stale.unlink(missing_ok=True)
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.PROCESSING, progress=0, error="")
    try:
        warnings = ingest(dataset, _progress(dataset, job, report))
    except IngestError as exc:
        Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.FAILED, error=str(exc))
        raise
    dataset.refresh_from_db()
    dataset.status, dataset.progress, dataset.error = Dataset.Status.READY, 1.0, ""
    dataset.save(update_fields=["status", "progress", "error", "updated_at"])
    if warnings:
        log.info("dataset %s: %s", dataset.pk, "; ".join(warnings))
    pipeline.images_ready(dataset, inline=inline)


def _progress(dataset: Dataset, job: Job | None, report) -> Progress:
    def progress(fraction: float, message: str) -> None:
        if job is not None:
            job.stop_if_cancelled()  # a member pressed Cancel: stop between two steps
            job.report(fraction, message)
        if report is not None:
            report(fraction, message)
        Dataset.objects.filter(pk=dataset.pk).update(progress=fraction)

    return progress
