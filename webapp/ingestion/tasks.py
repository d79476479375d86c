"""The ingestion's Celery tasks. Their names keep the "datasets." prefix they had when they
lived in webapp.datasets: messages already queued under those names still run."""

from __future__ import annotations

from celery import shared_task

from webapp.datasets.models import Dataset
from webapp.ingestion.imzml import IngestError
from webapp.jobs.runner import run_job


@shared_task(name="datasets.ingest", acks_late=True, reject_on_worker_lost=True)
def ingest_dataset(job_id: int) -> None:
    def work(job):
        from webapp.ingestion.services import run_ingestion

        dataset = Dataset.objects.filter(pk=job.target_id).first()
        if dataset is None:
            return "The dataset was deleted."
        run_ingestion(dataset, job=job)
        return f"{dataset.name} is ready"

    run_job(job_id, work, user_errors=(IngestError,))


@shared_task(name="datasets.import_images", acks_late=True, reject_on_worker_lost=True)
def import_images_task(job_id: int) -> None:
    from webapp.ingestion.pictures import PictureImportError, run_import_job

    run_job(job_id, run_import_job, user_errors=(PictureImportError,))
