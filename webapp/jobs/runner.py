"""Running a Job inside a Celery task: claim, beat, catch, finish. Tasks stay a few lines."""

from __future__ import annotations

import logging
from collections.abc import Callable

from webapp.jobs.dispatch import Heartbeat, claim
from webapp.jobs.models import Job, JobCancelled

__all__ = ["JobCancelled", "run_job"]

log = logging.getLogger(__name__)


def run_job(
    job_id: int, work: Callable[[Job], str | None], *, user_errors: tuple[type[Exception], ...] = ()
) -> None:
    """Run `work(job)` unless the job is gone, finished, or alive on another worker.

    A redelivered message after a worker crash finds the job RUNNING with a stale heartbeat
    and runs it again (work is idempotent); a duplicate message finds it fresh and skips.
    Errors in `user_errors` are shown to the user as they are; anything else is logged and
    shown as an internal error.
    """
    job = claim(job_id)
    if job is None:
        log.info("job %s is gone, finished or running elsewhere; skipping", job_id)
        return
    with Heartbeat(job.pk):
        try:
            message = work(job)
        except JobCancelled:
            job.cancelled()
        except user_errors as exc:
            job.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the job row must say it failed
            log.exception("job %s failed", job_id)
            job.fail(
                f"An internal error stopped this job ({type(exc).__name__}). "
                "The administrators can find details in the worker log."
            )
        else:
            job.finish(message or "")
