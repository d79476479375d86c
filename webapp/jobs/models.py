"""Job: one long-running piece of work (ingestion, import, training, prediction).

Celery tasks report progress here; pages and the API poll it.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.dispatch import Signal
from django.utils import timezone

# A running job whose heartbeat is older than this has lost its worker (killed, machine down).
STALE_AFTER = timedelta(seconds=int(os.environ.get("IONSIEVE_JOB_STALE_SECONDS", "45")))

# Sent with `job` when a job ends (done, failed, cancelled) or is queued again by a retry, so
# that the app owning the job's target (a dataset...) keeps its own status in step.
job_changed = Signal()


class JobCancelled(Exception):
    """Raised inside a job's work when someone asked it to stop."""


class Job(models.Model):
    class Kind(models.TextChoices):
        INGEST = "ingest", "Processing an MSI dataset"
        IMPORT = "import", "Importing images"
        TRAIN = "train", "Training a model"
        PREDICT = "predict", "Scoring images"
        QUICK = "quick", "Updating the scores from new labels"
        EXPORT = "export", "Preparing a download"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    # The row the job works on (a dataset id, a training run id...), by kind.
    target_id = models.BigIntegerField(null=True, blank=True)
    # What the work needs besides its target (an export's layout and filters...), by kind.
    params = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the message was handed to the broker (None: the broker was unreachable).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Updated every few seconds while a worker runs the job; a stale one means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def percent(self) -> int:
        return int(round(self.progress * 100))

    @property
    def eta_seconds(self) -> int | None:
        """Time left at the pace so far; None until there is a pace to go by."""
        if self.status != self.Status.RUNNING or not self.started_at or not 0.02 <= self.progress < 1:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return max(0, int(round(elapsed * (1 - self.progress) / self.progress)))

    @property
    def eta_text(self) -> str:
        s = self.eta_seconds
        if s is None:
            return ""
        if s < 60:
            return "less than a minute left"
        if s < 3600:
            return f"about {round(s / 60)} min left"
        return f"about {s / 3600:.1f} h left"

    def is_stuck(self, now: datetime | None = None) -> bool:
        """Running without a heartbeat for STALE_AFTER (its worker stopped), or never handed to
        the broker for that long (the broker was down)."""
        now = now or timezone.now()
        if self.status == self.Status.RUNNING:
            return self.heartbeat_at is None or now - self.heartbeat_at > STALE_AFTER
        if self.status == self.Status.QUEUED:
            return self.dispatched_at is None and now - self.created_at > STALE_AFTER
        return False

    @property
    def stuck(self) -> bool:
        return self.is_stuck()

    # Which Celery task runs each kind, by name so that this app imports none of them.
    TASKS = {
        Kind.INGEST: "datasets.ingest",
        Kind.IMPORT: "datasets.import_images",
        Kind.TRAIN: "classifier.train",
        Kind.PREDICT: "classifier.predict",
        Kind.QUICK: "classifier.quick_update",
        Kind.EXPORT: "datasets.export",
    }

    def start(self) -> None:
        """Mark the job running in this process (the command line path; workers claim jobs)."""
        now = timezone.now()
        self.status = self.Status.RUNNING
        self.started_at = self.heartbeat_at = now
        self.attempts += 1
        self.progress = 0.0
        self.error = ""
        self.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "progress", "error"])
        self._last_report = time.monotonic()

    def report(self, fraction: float, message: str | None = None) -> None:
        """Save progress, at most a few times per second so the database is not hammered."""
        now = time.monotonic()
        fraction = max(0.0, min(1.0, float(fraction)))
        changed_message = message is not None and message != self.message
        if not changed_message and now - getattr(self, "_last_report", 0.0) < 0.5:
            return
        self._last_report = now
        self.progress = fraction
        if message is not None:
            self.message = message[:300]
        Job.objects.filter(pk=self.pk).update(progress=self.progress, message=self.message)

    def should_stop(self) -> bool:
        return Job.objects.filter(pk=self.pk, cancel_requested=True).exists()

    def stop_if_cancelled(self) -> None:
        """Raise JobCancelled when a member cancelled the job; asks the database at most once a second."""
        now = time.monotonic()
        if now - getattr(self, "_last_cancel_check", 0.0) < 1.0:
            return
        self._last_cancel_check = now
        if self.should_stop():
            raise JobCancelled()

    def finish(self, message: str = "") -> None:
        self._end(self.Status.DONE, message=message, progress=1.0)

    def fail(self, error: str) -> None:
        self._end(self.Status.FAILED, error=error)

    def cancelled(self, message: str = "Cancelled") -> None:
        self._end(self.Status.CANCELLED, message=message)

    def _end(self, status: str, *, message: str = "", error: str = "", progress=None) -> None:
        self.status = status
        self.finished_at = timezone.now()
        if message:
            self.message = message[:300]
        self.error = error
        if progress is not None:
            self.progress = progress
        self.save(update_fields=["status", "finished_at", "message", "error", "progress"])
        job_changed.send(sender=Job, job=self)
