"""Downloads prepared as jobs (progress and time left), fetched when ready; ETA on every job."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets import export_jobs, labels
from webapp.jobs.models import Job

# Jobs are sent when their transaction commits (and run at once: tasks are eager in tests).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two(project):
    a = make_ready_dataset(project, n=6, name="kidney", thumbnails=False)
    b = make_ready_dataset(project, n=4, name="liver", thumbnails=False, seed=1)
    return a, b


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.content[:300]
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_it_prepares_a_dataset_download_as_a_job_and_serves_it_when_done(two, user, api):
    a, _ = two
    labels.set_labels(a.project, list(a.images.all()[:2]), user, "off")
    api.force_authenticate(user)
    r = api.post(f"/api/projects/{a.project.slug}/exports/", {"dataset": a.pk}, format="json")
    assert r.status_code == 202
    job = Job.objects.get(pk=r.json()["job"])  # eager in tests: already done
    assert (job.kind, job.status, job.progress) == ("export", "done", 1.0)
    assert job.message == "6 images ready to download"
    d = api.get(f"/api/exports/{job.pk}/")
    assert d.status_code == 200 and d["Content-Disposition"].endswith('kidney.zip"')
    names = _zip(d).namelist()
    assert "predictions.csv" in names and sum(n.endswith(".png") for n in names) == 6


def test_it_prepares_the_whole_project_and_only_labelled_images_when_asked(two, user, api):
    a, b = two
    labels.set_labels(a.project, [a.images.first(), b.images.first()], user, "on")
    api.force_authenticate(user)
    r = api.post(f"/api/projects/{a.project.slug}/exports/", {"labelled_only": True}, format="json")
    names = _zip(api.get(f"/api/exports/{r.json()['job']}/")).namelist()
    assert sum(n.endswith(".png") for n in names) == 2


def test_it_says_when_a_download_is_not_ready_or_refused(two, user, api):
    a, _ = two
    job = Job.objects.create(
        project=a.project,
        kind=Job.Kind.EXPORT,
        status=Job.Status.RUNNING,
        progress=0.4,
        started_at=timezone.now() - timedelta(seconds=40),
        created_by=user,
    )
    api.force_authenticate(user)
    r = api.get(f"/api/exports/{job.pk}/")
    assert r.status_code == 409 and "40%" in r.json()["detail"]
    assert (
        api.post(f"/api/projects/{a.project.slug}/exports/", {"layout": "nope"}, format="json").status_code
        == 400
    )
    api.force_authenticate(UserFactory())
    assert api.get(f"/api/exports/{job.pk}/").status_code == 404


def test_it_lets_viewers_download_what_they_can_see(two, user, api):
    a, _ = two
    viewer = UserFactory()
    add_member(a.project, viewer, "viewer")
    api.force_authenticate(viewer)
    r = api.post(f"/api/projects/{a.project.slug}/exports/", {"dataset": a.pk}, format="json")
    assert r.status_code == 202 and api.get(f"/api/exports/{r.json()['job']}/").status_code == 200


def test_it_frees_old_downloads(two, user, settings):
    a, _ = two
    job = export_jobs.start_export(a.project, user, a)
    path = export_jobs.export_path(job)
    assert path.exists()
    assert export_jobs.cleanup() == 0
    assert export_jobs.cleanup(now=path.stat().st_mtime + export_jobs.KEEP_SECONDS + 1) == 1
    assert not path.exists()


def test_it_estimates_the_time_left_from_the_pace_so_far(project, api, user):
    job = Job.objects.create(
        project=project,
        kind=Job.Kind.INGEST,
        status=Job.Status.RUNNING,
        progress=0.25,
        started_at=timezone.now() - timedelta(seconds=60),
    )
    assert 170 <= job.eta_seconds <= 190 and job.eta_text == "about 3 min left"
    job.progress = 0.01
    assert job.eta_seconds is None and job.eta_text == ""
    job.progress, job.status = 0.5, Job.Status.DONE
    assert job.eta_seconds is None
    api.force_authenticate(user)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, progress=0.9)
    body = api.get(f"/api/jobs/{job.pk}/").json()
    assert body["eta_text"] == "less than a minute left" and 0 <= body["eta_seconds"] <= 10
