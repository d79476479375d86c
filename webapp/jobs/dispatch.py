"""Handing jobs to the broker, and getting them back on track after a crash or a broker restart.

The database is the source of truth: a job is QUEUED until a worker claims it. Duplicate
messages are harmless because `claim` lets only one worker run a job at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp.jobs.models import STALE_AFTER, Job

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5
# A job that stopped its worker this many times (out of memory on a huge dataset...) is failed
# instead of being re-sent for ever, killing every worker that takes it.
MAX_ATTEMPTS = 3
QUEUE_DOWN_MESSAGE = "Waiting: the job queue is unavailable right now; the job starts when it is back."


def dispatch(job: Job) -> None:
    """Send the job's task once the current transaction commits."""
    transaction.on_commit(lambda: send(job.pk))


def send(job_id: int) -> bool:
    # The app Django loaded at start-up (webapp/__init__.py); the wiring module is not imported here.
    app = current_app

    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return False
    name = Job.TASKS[job.kind]
    if app.conf.task_always_eager:  # tests and single-process runs: run it here and now
        app.tasks[name].apply(args=[job.pk])
        return True
    try:
        app.send_task(name, args=[job.pk], retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure: keep the job, say why
        log.warning("could not queue job %s: %s", job_id, exc)
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(message=QUEUE_DOWN_MESSAGE)
        return False
    Job.objects.filter(pk=job_id).update(dispatched_at=timezone.now())
    return True


def claim(job_id: int) -> Job | None:
    """Take the job for this worker, or None when it is finished or alive elsewhere."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in Job.ACTIVE:
            return None
        if job.status == Job.Status.RUNNING and job.heartbeat_at and now - job.heartbeat_at < STALE_AFTER:
            return None  # another worker is running it right now
        if job.cancel_requested:
            job.cancelled()
            return None
        if job.status == Job.Status.RUNNING and job.attempts >= MAX_ATTEMPTS:
            job.fail(
                f"The worker stopped {job.attempts} times while running this job (it may have run out of "
                "memory). Ask the administrators to check the worker log, then retry."
            )
            return None
        job.status, job.started_at, job.heartbeat_at = Job.Status.RUNNING, now, now
        job.attempts += 1
        job.progress, job.error = 0.0, ""
        if job.message == QUEUE_DOWN_MESSAGE:
            job.message = ""
        job.save(
            update_fields=["status", "started_at", "heartbeat_at", "attempts", "progress", "error", "message"]
        )
    return job


class Heartbeat:
    """Keeps a running job's heartbeat fresh from a background thread."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id}")

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self.stop_event.wait(HEARTBEAT_SECONDS):
                try:
                    Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # noqa: BLE001 - a database hiccup must not stop the beats for good
                    log.warning("heartbeat of job %s failed; retrying", self.job_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()


def recover(broker_restarted: bool = False) -> int:
    """Re-send jobs whose message may be lost: never sent, sent to a broker that restarted
    since, running on a worker that stopped beating, or (filesystem broker) taken from the
    queue folder by a worker that was killed before it started them. Works on every broker."""
    now = timezone.now()
    long_ago = now - STALE_AFTER
    ids = set(
        Job.objects.filter(
            status=Job.Status.QUEUED, dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=2)
        ).values_list("pk", flat=True)
    )
    if broker_restarted:
        ids |= set(Job.objects.filter(status=Job.Status.QUEUED).values_list("pk", flat=True))
    # A stale job is re-sent at most once per STALE_AFTER (not at every tick of every watchdog).
    ids |= set(
        Job.objects.filter(
            Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=long_ago),
            status=Job.Status.RUNNING,
            heartbeat_at__lt=long_ago,
        ).values_list("pk", flat=True)
    )
    waiting = waiting_job_ids()
    if waiting is not None:
        # The filesystem broker drops a message once a worker takes it (acks_late cannot help),
        # but its folder can be read: a queued job without a waiting message lost it.
        ids |= set(
            Job.objects.filter(status=Job.Status.QUEUED, dispatched_at__lt=long_ago).values_list(
                "pk", flat=True
            )
        )
        ids -= waiting  # its message is still there: a worker will take it
    sent = sum(send(i) for i in sorted(ids))
    if sent:
        log.info("re-sent %d jobs", sent)
    return sent


def waiting_job_ids() -> set[int] | None:
    """Ids of the jobs whose message waits in the filesystem broker's queue folder; None for
    other brokers (their queues cannot be read without taking the messages)."""
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return None
    ids: set[int] = set()
    for path in Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).glob("*.msg"):
        try:
            payload = json.loads(path.read_bytes())
            body = payload["body"]
            if payload.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            ids.add(int(json.loads(body)[0][0]))
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue  # taken by a worker meanwhile, half-written, or not a job message
    return ids


def uses_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def broker_identity() -> str | None:
    """Redis's run id (changes when it restarts, losing queued messages); None otherwise."""
    if not uses_redis():
        return None
    import redis

    url = settings.CELERY_BROKER_URL

    try:
        return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).info("server")["run_id"]
    except Exception:  # noqa: BLE001
        return None


def queue_available() -> bool:
    """Whether the broker answers, cached briefly so pages stay fast."""
    if not uses_redis():
        return True
    cached = cache.get("ionsieve:queue-ok")
    if cached is not None:
        return cached
    ok = broker_identity() is not None
    cache.set("ionsieve:queue-ok", ok, 5)
    return ok


class Watchdog(threading.Thread):
    """Runs inside each worker: every `interval` seconds it re-sends orphaned jobs, whatever
    the broker; with Redis it also re-sends every queued job at start and after a restart."""

    def __init__(self, interval: float | None = None):
        super().__init__(daemon=True, name="ionsieve-watchdog")
        # The fault tests shorten it; 10 s is plenty next to STALE_AFTER.
        self.interval = interval or float(os.environ.get("IONSIEVE_WATCHDOG_SECONDS", "10"))
        self.identity: str | None = None  # Redis's run id when last seen; None: not seen yet

    def tick(self) -> int:
        """One round; returns how many jobs were sent."""
        if not uses_redis():
            return recover()
        ident = broker_identity()
        if ident is None:
            return 0  # Redis is down: nothing could be sent; the next tick tries again
        # Redis keeps nothing on disk: at start, and when its run id changed, queued messages may be gone.
        restarted = ident != self.identity
        self.identity = ident
        return recover(broker_restarted=restarted)

    def run(self) -> None:
        from django.db import connection

        while True:
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the watchdog must never die
                log.exception("job watchdog")
            finally:
                connection.close()
            threading.Event().wait(self.interval)
