"""The datasets' Celery task: exports (ingestion's tasks are in webapp/ingestion/tasks.py)."""

from __future__ import annotations

from celery import shared_task

from webapp.jobs.runner import run_job


@shared_task(name="datasets.export", acks_late=True, reject_on_worker_lost=True)
def export_task(job_id: int) -> None:
    from webapp.datasets.export import ExportError
    from webapp.datasets.export_jobs import run_export_job

    run_job(job_id, run_export_job, user_errors=(ExportError,))
