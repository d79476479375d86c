"""Thin Celery tasks: take a job id, call a service, tolerate deleted rows."""

from __future__ import annotations

from celery import shared_task

from classifier import scoring, training
from classifier.models import TrainingRun
from webapp.datasets.models import Dataset
from webapp.jobs.runner import run_job


@shared_task(name="classifier.train", acks_late=True, reject_on_worker_lost=True)
def train_model(job_id: int) -> None:
    def work(job):
        run = TrainingRun.objects.filter(pk=job.target_id).select_related("project").first()
        if run is None:
            return "The training run was deleted."
        version = training.run_training(run, job=job)
        return f"Model v{version.number} trained and activated"

    run_job(job_id, work, user_errors=(training.TrainingError,))


@shared_task(name="classifier.predict", acks_late=True, reject_on_worker_lost=True)
def predict(job_id: int) -> None:
    def work(job):
        if job.target_id:
            dataset = Dataset.objects.filter(pk=job.target_id).first()
            if dataset is None:
                return "The dataset was deleted."
            n = scoring.score_dataset(dataset)
        else:
            n = scoring.score_project(job.project, report=job.report)
        return f"{n:,} images scored"

    run_job(job_id, work)


@shared_task(name="classifier.quick_update", acks_late=True, reject_on_worker_lost=True)
def quick_update(job_id: int) -> None:
    from classifier import active

    run_job(job_id, active.run_live_update)
