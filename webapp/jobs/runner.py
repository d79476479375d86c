"""Running a Job inside a Celery task: start, catch, finish. Tasks stay a few lines."""
from __future__ import annotations

import logging
from collections.abc import Callable

from webapp.jobs.models import Job

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


def run_job(job_id: int, work: Callable[[Job], str | None], *, user_errors: tuple[type[Exception], ...] = ()) -> None:
    """Run `work(job)` for a job that still exists and is not finished.

    A job whose row was deleted, or that already ended (a redelivered message after a worker
    crash), is skipped. Errors in `user_errors` are shown to the user as they are; anything
    else is logged and shown as an internal error.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in (Job.Status.DONE, Job.Status.CANCELLED):
        log.info("job %s is gone or finished; skipping", job_id)
        return
    if job.cancel_requested:
        job.cancelled()
        return
    job.start()
    try:
        message = work(job)
    except JobCancelled:
        job.cancelled()
    except user_errors as exc:
        job.fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the job row must say it failed
        log.exception("job %s failed", job_id)
        job.fail(f"An internal error stopped this job ({type(exc).__name__}). The administrators can find details in the worker log.")
    else:
        job.finish(message or "")
