"""Reactions to label events: retrain after enough new labels (a new dataset's first scoring is
webapp/ingestion/pipeline.py's explicit step).

Auto-retrain (IONSIEVE_AUTO_RETRAIN_LABELS = N > 0) starts a training run once N images were
labelled since the active model, and backs off instead of failing again and again:

- labels that cannot train (a binary class nobody has labelled yet, fewer than 4 labelled
  images) start nothing: the run would fail the same way;
- after a failed run (any cause), the next one waits for N x 2^(k-1) label changes since the
  failure, k being the number of runs that failed in a row (capped at N x 2^BACKOFF_CAP): a
  fix (new labels, corrected labels) restarts it, a persistent fault does not take the worker
  once per label.

`auto_retrain_state` derives all this from the rows that exist (training runs, their jobs,
the label history): no extra field. The project page shows its `notice`, one message whatever
the number of labels or failed runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from webapp.datasets.signals import labels_changed
from webapp.jobs.models import Job

log = logging.getLogger(__name__)

BACKOFF_CAP = 6  # at most N x 64 label changes between two automatic runs after failures
MIN_LABELLED = 4  # training.run_training refuses fewer labelled images


@dataclass
class AutoRetrainState:
    """Where auto-retrain stands for one project.

    state: "due" (a run should start), "busy" (one is queued or running), "idle" (fewer than N
    new labels), "waiting" (the labels cannot train yet), "backing_off" (after failed runs).
    """

    state: str
    threshold: int
    new_labels: int  # labelled images since the active model (all of them without one)
    why_not: str = ""  # "waiting": what the labels lack
    failures: int = 0  # training runs that failed in a row, latest first
    failed_at: object = None  # when the latest of them ended
    error: str = ""  # why it failed, as its job says it to users
    changes_needed: int = 0  # "backing_off": label changes since the failure before the next run
    changes_since: int = 0

    @property
    def notice(self) -> str:
        """One message for the project page ('' when there is nothing to say)."""
        if self.state == "waiting":
            return f"Automatic retraining is waiting: {self.why_not}"
        if self.state == "backing_off":
            runs = (
                "the last training run" if self.failures == 1 else f"the last {self.failures} training runs"
            )
            when = timezone.localtime(self.failed_at).strftime("%Y-%m-%d %H:%M") if self.failed_at else ""
            return (
                f"Automatic retraining is paused: {runs} failed ({when}): {self.error} "
                f"It starts again after {self.changes_needed} label changes since then "
                f"({self.changes_since} so far); the Train button does not wait."
            )
        return ""


def _labelled(project):
    from webapp.datasets.models import IonImage

    return IonImage.objects.filter(dataset__project=project).exclude(consensus__isnull=True)


def _why_not_trainable(project, labelled) -> str:
    """What training.run_training would refuse about these labels ('' = nothing known). Kept
    to the checks that are certain to fail, so a run that might work is never held back."""
    from webapp.projects.models import Task

    if project.task == Task.BINARY:
        present = set(labelled.values_list("consensus", flat=True).distinct())
        missing = [c for c in project.classes if c not in present]
        if missing:
            return f"no image is labelled {', '.join(missing)} yet: label some of each class."
    # Shared collections may add training images: then the run decides.
    if not project.training_collections.exists():
        n = labelled.count()
        if n < MIN_LABELLED:
            return f"only {n} labelled images: label at least {MIN_LABELLED}."
    return ""


def auto_retrain_state(project) -> AutoRetrainState | None:
    """None when auto-retrain is off (IONSIEVE_AUTO_RETRAIN_LABELS <= 0)."""
    threshold = int(settings.IONSIEVE_AUTO_RETRAIN_LABELS)
    if threshold <= 0:
        return None
    from webapp.datasets.models import LabelEvent

    labelled = _labelled(project)
    # Quick updates (classifier.active) do not count: the last full model does.
    active = project.model_versions.filter(quick=False).order_by("-is_active", "-number").first()
    new = labelled.count() - (active.label_total if active else 0)
    s = AutoRetrainState(state="idle", threshold=threshold, new_labels=new)

    runs = list(project.training_runs.select_related("job").order_by("-created_at", "-pk")[: BACKOFF_CAP + 1])
    for run in runs:
        if run.job.status != Job.Status.FAILED:
            break
        s.failures += 1
    if s.failures:
        job = runs[0].job
        s.failed_at = job.finished_at or runs[0].created_at
        s.error = job.error or "no reason was recorded."
        s.changes_needed = threshold * 2 ** (min(s.failures, BACKOFF_CAP) - 1)
        # Every label given, changed or removed since then (the label history keeps them all).
        s.changes_since = LabelEvent.objects.filter(
            image__dataset__project=project, at__gt=s.failed_at
        ).count()

    if project.jobs.filter(kind=Job.Kind.TRAIN, status__in=Job.ACTIVE).exists():
        s.state = "busy"
    elif new < threshold:
        s.state = "idle"
    elif why := _why_not_trainable(project, labelled):
        s.state, s.why_not = "waiting", why
    elif s.failures and s.changes_since < s.changes_needed:
        s.state = "backing_off"
    else:
        s.state = "due"
    return s


@receiver(labels_changed)
def maybe_retrain(sender, project, count: int = 0, **kwargs) -> None:
    s = auto_retrain_state(project)
    if s is None or s.state != "due":
        return
    from classifier import training

    if s.failures:
        log.info(
            "auto-retrain of %s after %d failed run(s): %d label changes since",
            project.slug,
            s.failures,
            s.changes_since,
        )
    training.start_training(project, user=None)


@receiver(labels_changed)
def live_update(sender, project, count: int = 0, **kwargs) -> None:
    """Queue the project's live update (classifier.active): a job row, nothing more here."""
    from classifier import active

    try:
        active.labels_arrived(project)
    except Exception:  # noqa: BLE001 - a label must be saved whatever happens to the update
        log.exception("could not queue the live update of %s", project.slug)
