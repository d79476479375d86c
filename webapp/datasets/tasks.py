from __future__ import annotations

from celery import shared_task

from webapp.datasets.ingest import IngestError
from webapp.datasets.models import Dataset
from webapp.jobs.runner import run_job


@shared_task(name="datasets.ingest", acks_late=True, reject_on_worker_lost=True)
def ingest_dataset(job_id: int) -> None:
    def work(job):
        from webapp.datasets.services import run_processing

        dataset = Dataset.objects.filter(pk=job.target_id).first()
        if dataset is None:
            return "The dataset was deleted."
        run_processing(dataset, job=job)
        return f"{dataset.name} is ready"

    run_job(job_id, work, user_errors=(IngestError,))


@shared_task(name="datasets.import_images", acks_late=True, reject_on_worker_lost=True)
def import_images_task(job_id: int) -> None:
    from webapp.datasets.image_import import ImportError_, run_import_job

    run_job(job_id, run_import_job, user_errors=(ImportError_,))


@shared_task(name="datasets.export", acks_late=True, reject_on_worker_lost=True)
def export_task(job_id: int) -> None:
    from webapp.datasets.export import ExportError
    from webapp.datasets.export_jobs import run_export_job

    run_job(job_id, run_export_job, user_errors=(ExportError,))
