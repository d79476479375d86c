"""A way out of a stuck or failed job: retry it or cancel it (pages and API call these)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job, job_changed

# An image import deletes its uploaded archive when it ends, so only an unfinished one can run again.
RETRY_AFTER_END = {Job.Kind.INGEST, Job.Kind.TRAIN, Job.Kind.PREDICT}


class JobActionError(Exception):
    """A refused retry or cancel, worded for the person who clicked."""


def can_retry(job: Job) -> bool:
    if job.status == Job.Status.QUEUED:
        return True  # re-sending is harmless: a duplicate message finds the job claimed
    if job.status == Job.Status.RUNNING:
        return job.is_stuck()
    return job.kind in RETRY_AFTER_END and job.status in (Job.Status.FAILED, Job.Status.CANCELLED)


def can_cancel(job: Job) -> bool:
    return job.is_active


def who(user) -> str:
    return f" by {user.username}" if user is not None and user.is_authenticated else ""


def retry(job: Job, user=None) -> Job:
    """Queue the job again from the start (its work is idempotent), with a fresh attempt count."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if not can_retry(job):
            if job.status == Job.Status.RUNNING:
                raise JobActionError(
                    "This job is running and its worker is alive: wait for it, or cancel it."
                )
            if job.status == Job.Status.DONE:
                raise JobActionError("This job has already finished.")
            raise JobActionError(
                "This import cannot run again: its uploaded archive was removed when it "
                "ended. Upload the archive again."
            )
        if (
            job.target_id
            and Job.objects.filter(kind=job.kind, target_id=job.target_id, status__in=Job.ACTIVE)
            .exclude(pk=job.pk)
            .exists()
        ):
            raise JobActionError("Another job is already working on this; wait for it to end.")
        job.status, job.progress, job.error = Job.Status.QUEUED, 0.0, ""
        job.cancel_requested, job.attempts = False, 0
        job.heartbeat_at = job.started_at = job.finished_at = job.dispatched_at = None
        job.message = f"Retried{who(user)} at {timezone.localtime():%H:%M}; waiting for a worker"[:300]
        job.save(
            update_fields=[
                "status",
                "progress",
                "error",
                "cancel_requested",
                "attempts",
                "heartbeat_at",
                "started_at",
                "finished_at",
                "dispatched_at",
                "message",
            ]
        )
        job_changed.send(sender=Job, job=job)
        dispatch(job)
    return job


def cancel(job: Job, user=None) -> Job:
    """Stop a job: at once when it is queued or its worker is gone, else at its next progress step."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if not can_cancel(job):
            raise JobActionError(f"This job has already ended ({job.get_status_display().lower()}).")
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        job.cancel_requested = True
        if job.status == Job.Status.QUEUED or job.is_stuck():
            # No worker is on it: a late message finds it ended and does nothing.
            job.cancelled(f"Cancelled{who(user)}")
        else:
            job.message = f"Stopping: cancelled{who(user)}"
            Job.objects.filter(pk=job.pk).update(message=job.message)
    return job
