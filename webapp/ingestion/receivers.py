"""Keeping a dataset's status in step with its processing job when the job ends outside the
ingestion itself (cancelled, failed by the watchdog, retried): never "processing" for ever."""

from __future__ import annotations

from django.dispatch import receiver

from webapp.datasets.models import Dataset
from webapp.jobs.models import Job, job_changed

UNFINISHED = (Dataset.Status.UPLOADED, Dataset.Status.PROCESSING)


@receiver(job_changed, sender=Job, dispatch_uid="ingestion-follow-ingest-jobs")
def follow_ingest_job(sender, job: Job, **kwargs) -> None:
    if job.kind != Job.Kind.INGEST or not job.target_id:
        return
    rows = Dataset.objects.filter(pk=job.target_id)
    if job.status == Job.Status.QUEUED:  # retried
        rows.update(status=Dataset.Status.UPLOADED, progress=0, error="")
    elif job.status == Job.Status.CANCELLED:
        rows.filter(status__in=UNFINISHED).update(
            status=Dataset.Status.FAILED,
            error=f"Processing was stopped ({job.message.lower()}). Process it again or delete the dataset.",
        )
    elif job.status == Job.Status.FAILED:
        # An ingestion error has already said why; this covers failures outside it.
        rows.filter(status__in=UNFINISHED).update(
            status=Dataset.Status.FAILED, error=job.error or "Processing stopped without a reason."
        )
