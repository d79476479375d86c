from __future__ import annotations

from webapp.jobs.dispatch import queue_available


def queue_status(request) -> dict:
    """A banner on every page when the job queue cannot be reached (pages keep working)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    if queue_available():
        return {}
    return {
        "queue_warning": "The job queue is unavailable right now: uploads and training are saved and "
        "will start as soon as it is back."
    }
