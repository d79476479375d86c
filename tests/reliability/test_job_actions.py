"""A way out of a stuck job: Retry and Cancel from the pages and the API, for annotators and
owners only, and a dataset never left "processing" for ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets.models import Dataset
from webapp.jobs import services
from webapp.jobs.models import Job, JobCancelled

LONG_AGO = timezone.now() - timedelta(hours=1)


@pytest.fixture
def team(db):
    owner, annotator, viewer, outsider = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    project = ProjectFactory(owner=owner)
    add_member(project, annotator, "annotator")
    add_member(project, viewer, "viewer")
    return {
        "owner": owner,
        "annotator": annotator,
        "viewer": viewer,
        "outsider": outsider,
        "project": project,
    }


def processing(project, status: str = Job.Status.RUNNING, **job_fields) -> tuple[Dataset, Job]:
    """A dataset stuck at 34% with its ingest job (by default running, its worker dead an hour ago)."""
    ds = make_ready_dataset(project, n=3, thumbnails=False)
    Dataset.objects.filter(pk=ds.pk).update(status=Dataset.Status.PROCESSING, progress=0.34)
    job = Job.objects.create(project=project, kind=Job.Kind.INGEST, target_id=ds.pk, status=status)
    fields = {"heartbeat_at": LONG_AGO, "dispatched_at": LONG_AGO, "attempts": 1, "progress": 0.34}
    if status == Job.Status.QUEUED:
        fields = {"dispatched_at": LONG_AGO}
    Job.objects.filter(pk=job.pk).update(**{**fields, **job_fields})
    return ds, Job.objects.get(pk=job.pk)


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("action", ["retry", "cancel"])
@pytest.mark.parametrize(
    ("role", "expected"), [("owner", 200), ("annotator", 200), ("viewer", 403), ("outsider", 404)]
)
def test_it_lets_only_annotators_and_owners_retry_or_cancel(team, action, role, expected):
    ds, job = processing(team["project"])
    response = api_as(team[role]).post(f"/api/jobs/{job.pk}/{action}/")
    assert response.status_code == expected, response.content
    job.refresh_from_db()
    if expected == 200:
        assert job.status == {"retry": "queued", "cancel": "cancelled"}[action]
    else:
        assert job.status == "running" and not job.cancel_requested


def test_it_cancels_a_stuck_ingestion_and_leaves_the_dataset_failed_with_a_reason(team):
    ds, job = processing(team["project"])
    body = api_as(team["annotator"]).post(f"/api/jobs/{job.pk}/cancel/").json()
    assert body["status"] == "cancelled" and body["message"] == f"Cancelled by {team['annotator'].username}"
    ds.refresh_from_db()
    assert ds.status == "failed"
    assert ds.error == (
        f"Processing was stopped (cancelled by {team['annotator'].username}). "
        "Process it again or delete the dataset."
    )
    # A late message for the cancelled job does nothing.
    from webapp.jobs.dispatch import claim

    assert claim(job.pk) is None and Job.objects.get(pk=job.pk).status == "cancelled"
    # Then it can be retried, which queues the dataset again.
    body = api_as(team["annotator"]).post(f"/api/jobs/{job.pk}/retry/").json()
    assert body["status"] == "queued" and body["attempts"] == 0 and not body["cancel_requested"]
    ds.refresh_from_db()
    assert ds.status == "uploaded" and ds.error == "" and ds.progress == 0


def test_it_cancels_a_queued_job_at_once_and_a_live_one_at_its_next_step(team):
    ds, queued = processing(team["project"], status=Job.Status.QUEUED)
    assert services.cancel(queued, team["owner"]).status == "cancelled"
    assert Dataset.objects.get(pk=ds.pk).status == "failed"

    ds2, live = processing(team["project"], heartbeat_at=timezone.now())
    assert not live.stuck
    after = services.cancel(live, team["owner"])
    assert after.status == "running" and after.cancel_requested and after.message.startswith("Stopping")
    assert Dataset.objects.get(pk=ds2.pk).status == "processing"  # the worker stops it
    with pytest.raises(services.JobActionError, match="worker is alive"):
        services.retry(live, team["owner"])


def test_it_stops_a_running_ingestion_between_two_steps_when_cancelled(team, tmp_path):
    from tests.datasets.helpers import synthetic
    from webapp.ingestion import services as dataset_services

    user, project = team["owner"], team["project"]
    truth = synthetic(tmp_path, seed=4)
    ds = dataset_services.create_imzml_dataset(
        project, user, name="to stop", imzml=truth.imzml_path, ibd=truth.ibd_path, top=6
    )
    job = Job.objects.create(
        project=project,
        kind=Job.Kind.INGEST,
        target_id=ds.pk,
        status=Job.Status.RUNNING,
        heartbeat_at=timezone.now(),
    )
    services.cancel(job, user)
    with pytest.raises(JobCancelled):
        dataset_services.run_ingestion(ds, job=job)
    job.cancelled()  # what run_job does with JobCancelled
    ds.refresh_from_db()
    assert ds.status == "failed" and "stopped" in ds.error and ds.image_count == 0


def test_it_refuses_to_retry_a_finished_job_or_one_whose_target_is_busy(team):
    ds, job = processing(team["project"])
    Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE)
    response = api_as(team["owner"]).post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 400 and response.json()["detail"] == "This job has already finished."
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
    Job.objects.create(
        project=team["project"],
        kind=Job.Kind.INGEST,
        target_id=ds.pk,
        heartbeat_at=timezone.now(),
        status=Job.Status.RUNNING,
    )
    response = api_as(team["owner"]).post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 400 and "Another job" in response.json()["detail"]
    response = api_as(team["owner"]).post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 400 and "already ended (failed)" in response.json()["detail"]


def test_it_does_not_retry_an_ended_import_whose_archive_is_gone(team):
    job = Job.objects.create(project=team["project"], kind=Job.Kind.IMPORT, status=Job.Status.FAILED)
    assert not services.can_retry(job)
    with pytest.raises(services.JobActionError, match="Upload the archive again"):
        services.retry(job, team["owner"])


def test_it_retries_a_stuck_job_from_the_start_with_a_fresh_attempt_count(
    team, django_capture_on_commit_callbacks, monkeypatch
):
    from webapp.jobs import dispatch

    sent: list[int] = []
    monkeypatch.setattr(dispatch, "send", lambda job_id: sent.append(job_id) or True)
    ds, job = processing(team["project"], attempts=3)
    with django_capture_on_commit_callbacks(execute=True):
        services.retry(job, team["annotator"])
    job.refresh_from_db()
    assert sent == [job.pk]
    assert (job.status, job.attempts, job.progress, job.heartbeat_at) == ("queued", 0, 0.0, None)
    assert job.message.startswith(f"Retried by {team['annotator'].username}")


# ---------------------------------------------------------------- what the pages show
def test_it_surfaces_a_stuck_job_with_retry_and_cancel_on_the_dataset_and_project_pages(team, client):
    """Never a dataset "processing" for ever without a word: a stale job says so, with a way out."""
    ds, job = processing(team["project"])
    client.force_login(team["annotator"])
    for url in (f"/datasets/{ds.pk}/", f"/p/{team['project'].slug}/"):
        html = client.get(url).content.decode()
        assert "No news from its worker since" in html, url
        assert f'data-job-action="retry" data-job="{job.pk}"' in html, url
        assert f'data-job-action="cancel" data-job="{job.pk}"' in html, url
    client.force_login(team["viewer"])
    html = client.get(f"/datasets/{ds.pk}/").content.decode()
    assert "No news from its worker since" in html and "data-job-action" not in html
    jobs = api_as(team["viewer"]).get(f"/api/projects/{team['project'].slug}/jobs/?active=1").json()
    assert [(j["id"], j["stuck"], j["can_retry"], j["can_cancel"]) for j in jobs] == [
        (job.pk, True, True, True)
    ]


def test_it_lists_jobs_stopped_in_the_last_day_with_retry(team, client):
    ds, job = processing(team["project"])
    services.cancel(job, team["owner"])
    client.force_login(team["owner"])
    html = client.get(f"/p/{team['project'].slug}/").content.decode()
    assert 'id="problem-jobs"' in html and f'data-job-action="retry" data-job="{job.pk}"' in html
    html = client.get(f"/datasets/{ds.pk}/").content.decode()
    assert "Processing was stopped (cancelled by" in html and 'data-job-action="retry"' in html
    Job.objects.filter(pk=job.pk).update(finished_at=LONG_AGO - timedelta(days=1))
    assert 'id="problem-jobs"' not in client.get(f"/p/{team['project'].slug}/").content.decode()


def test_it_recovers_a_stale_ingestion_so_the_dataset_does_not_stay_processing(team, monkeypatch, tmp_path):
    """The watchdog re-sends the stale job; a worker claims it and finishes the dataset."""
    from tests.datasets.helpers import synthetic
    from webapp.ingestion import services as dataset_services
    from webapp.jobs import dispatch

    user, project = team["owner"], team["project"]
    truth = synthetic(tmp_path, seed=5)
    ds = dataset_services.create_imzml_dataset(
        project, user, name="orphan", imzml=truth.imzml_path, ibd=truth.ibd_path, top=6
    )
    Dataset.objects.filter(pk=ds.pk).update(status=Dataset.Status.PROCESSING, progress=0.34)
    job = Job.objects.create(
        project=project, kind=Job.Kind.INGEST, target_id=ds.pk, status=Job.Status.RUNNING, attempts=1
    )
    Job.objects.filter(pk=job.pk).update(heartbeat_at=LONG_AGO, dispatched_at=LONG_AGO)
    assert dispatch.Watchdog().tick() == 1  # eager here: the re-sent task runs at once, as a worker would
    job.refresh_from_db()
    ds.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 2)
    assert ds.status == "ready" and ds.image_count > 0
