"""Auto-retrain backs off after a failed run and says why, once (classifier/receivers.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from classifier import training
from classifier.models import TrainingRun
from classifier.receivers import auto_retrain_state
from tests.gallery_data import make_ready_dataset
from webapp.datasets import labels
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(project, user, settings):
    settings.IONSIEVE_AUTO_RETRAIN_LABELS = 2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return list(make_ready_dataset(project, n=30, user=user, thumbnails=False).images.order_by("index"))


@pytest.fixture
def failing_training(monkeypatch):
    calls = []

    def fail(run, job=None, **kwargs):
        calls.append(run.pk)
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "run_training", fail)
    return calls


def label(project, user, images, value, capture):
    """Label as the pages do: the signal fires when the transaction commits."""
    with capture(execute=True):
        labels.set_labels(project, images, user, value)


def notices(client, project, user) -> tuple[int, str]:
    client.force_login(user)
    html = client.get(reverse("pages:project", args=[project.slug])).content.decode()
    return html.count('id="auto-retrain"'), html


def test_it_starts_no_run_while_a_class_is_missing_and_says_so(
    project, user, images, failing_training, client, django_capture_on_commit_callbacks
):
    for i in range(6):
        label(project, user, images[i : i + 1], "off", django_capture_on_commit_callbacks)
    assert TrainingRun.objects.count() == 0 and failing_training == []
    state = auto_retrain_state(project)
    assert state.state == "waiting" and "no image is labelled on yet" in state.notice
    count, html = notices(client, project, user)
    assert count == 1 and "no image is labelled on yet" in html
    # The fix (a label of the missing class) starts the run at once.
    label(project, user, images[6:7], "on", django_capture_on_commit_callbacks)
    assert len(failing_training) == 1


def test_it_backs_off_exponentially_after_failed_runs(
    project, user, images, failing_training, client, django_capture_on_commit_callbacks
):
    label(project, user, images[0:2], "off", django_capture_on_commit_callbacks)
    label(project, user, images[2:4], "on", django_capture_on_commit_callbacks)
    assert len(failing_training) == 1
    run = TrainingRun.objects.get()
    assert run.job.status == Job.Status.FAILED

    # Threshold 2, one failure: 2 label changes since the failure before the next run.
    label(project, user, images[4:5], "off", django_capture_on_commit_callbacks)
    assert len(failing_training) == 1
    state = auto_retrain_state(project)
    assert (state.state, state.failures, state.changes_since, state.changes_needed) == (
        "backing_off",
        1,
        1,
        2,
    )
    assert "internal error" in state.notice and "RuntimeError" in state.notice
    label(project, user, images[5:6], "on", django_capture_on_commit_callbacks)
    assert len(failing_training) == 2

    # Two failures in a row: 4 changes (a relabel counts as a change).
    for i in range(3):
        label(project, user, images[6 + i : 7 + i], "off", django_capture_on_commit_callbacks)
    assert len(failing_training) == 2
    assert auto_retrain_state(project).changes_needed == 4
    label(project, user, images[0:1], "on", django_capture_on_commit_callbacks)
    assert len(failing_training) == 3
    assert TrainingRun.objects.count() == 3

    # One message on the page, however many runs failed and labels were given.
    count, html = notices(client, project, user)
    assert count == 1 and "the last 3 training runs failed" in html


def test_it_forgets_failures_once_a_run_succeeds(
    project, user, images, failing_training, django_capture_on_commit_callbacks
):
    label(project, user, images[0:2], "off", django_capture_on_commit_callbacks)
    label(project, user, images[2:4], "on", django_capture_on_commit_callbacks)
    assert auto_retrain_state(project).failures == 1
    # A later run that worked (here: started by hand and marked done) ends the back-off.
    job = Job.objects.create(project=project, kind=Job.Kind.TRAIN, status=Job.Status.DONE)
    TrainingRun.objects.create(project=project, job=job, params={})
    state = auto_retrain_state(project)
    assert state.failures == 0 and state.state == "due" and state.notice == ""


def test_it_says_nothing_when_auto_retrain_is_off(
    project, user, images, settings, client, django_capture_on_commit_callbacks
):
    settings.IONSIEVE_AUTO_RETRAIN_LABELS = 0
    label(project, user, images[0:5], "off", django_capture_on_commit_callbacks)
    assert auto_retrain_state(project) is None and TrainingRun.objects.count() == 0
    assert notices(client, project, user)[0] == 0
