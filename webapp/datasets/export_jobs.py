"""Downloads prepared by a job (a project of 100,000 images takes minutes to zip): the page
shows progress and time left, then the browser fetches the finished file."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from webapp.datasets.export import ExportError, check_layout, default_layout, export_zip
from webapp.datasets.models import Dataset, IonImage
from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job
from webapp.projects.models import Project

KEEP_SECONDS = 2 * 24 * 3600  # a prepared download stays this long, then its space is freed


def exports_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_path(job: Job) -> Path:
    return exports_dir() / f"job-{job.pk}.zip"


def download_name(job: Job) -> str:
    name = job.params.get("name") or job.project.slug
    return f"{name}.zip"


def start_export(
    project: Project,
    user,
    dataset: Dataset | None = None,
    layout: str | None = None,
    labelled_only: bool = False,
    with_arrays: bool = False,
) -> Job:
    """Check the request now (a wrong layout is said at once), then queue the work."""
    layout = layout or default_layout(project)
    check_layout(layout, project.task)
    cleanup()
    job = Job.objects.create(
        project=project,
        kind=Job.Kind.EXPORT,
        created_by=user,
        target_id=dataset.pk if dataset else None,
        message=f"Preparing {dataset.name if dataset else project.name} for download"[:300],
        params={
            "layout": layout,
            "labelled_only": labelled_only,
            "arrays": with_arrays,
            "name": (dataset.name if dataset else project.slug)[:100],
        },
    )
    dispatch(job)
    return job


def run_export_job(job: Job) -> str:
    images = IonImage.objects.filter(dataset__project=job.project, dataset__status=Dataset.Status.READY)
    if job.target_id is not None:
        if not Dataset.objects.filter(pk=job.target_id, project=job.project).exists():
            raise ExportError("The dataset was deleted before its download was ready.")
        images = images.filter(dataset_id=job.target_id)
    if job.params.get("labelled_only"):
        images = images.filter(consensus__isnull=False)
    out = export_path(job)
    out.parent.mkdir(parents=True, exist_ok=True)

    def progress(fraction: float) -> None:
        job.stop_if_cancelled()
        job.report(fraction)

    n = export_zip(
        job.project,
        images,
        out,
        job.params.get("layout"),
        with_arrays=job.params.get("arrays", False),
        progress=progress,
    )
    return f"{n} images ready to download"


def cleanup(now: float | None = None) -> int:
    """Delete prepared downloads older than KEEP_SECONDS; returns how many."""
    now = now or time.time()
    removed = 0
    for path in exports_dir().glob("job-*.zip*"):
        try:
            if now - path.stat().st_mtime > KEEP_SECONDS:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
