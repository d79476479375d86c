"""The live update through the API: label requests only queue it; the worker rescores."""

from __future__ import annotations

import time

import numpy as np
import pytest

from classifier import tasks
from classifier.models import ModelVersion
from tests.classifier.test_train_and_score import make_datasets
from webapp.datasets.models import IonImage
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch, settings):
    """A worker that is not running yet: jobs are queued, their ids kept."""
    from webapp.celery import app
    from webapp.jobs import dispatch

    settings.IONSIEVE_LIVE_UPDATE_LABELS = 4
    settings.IONSIEVE_LIVE_UPDATE_IDLE_SECONDS = 0.2
    app.conf.task_always_eager = False
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "send", lambda job_id: sent.append(job_id) or True)
    return sent


def test_it_queues_one_live_update_and_rescores_in_the_worker_without_blocking_labels(
    project, user, tmp_path, capsys, api, queued, django_capture_on_commit_callbacks
):
    dss = make_datasets(project, user, tmp_path, capsys, n=2, label=False)
    api.force_authenticate(user)
    before = {im.pk: im.probability for im in IonImage.objects.filter(dataset__project=project)}
    took = []
    for ds in dss:
        for im, (_mz, lab) in list(zip(ds.images.order_by("index"), ds.truth.ions, strict=True))[:4]:
            with django_capture_on_commit_callbacks(execute=True):
                t = time.perf_counter()
                r = api.put(f"/api/images/{im.pk}/label/", {"label": lab}, format="json")
                took.append(time.perf_counter() - t)
            assert r.status_code == 200
    # The requests wrote labels and one job row: no model was fitted inside them (the first
    # request of a test process also imports the URL configuration).
    assert np.median(took) < 0.25 and max(took[1:]) < 1.0
    assert not ModelVersion.objects.filter(project=project).exists()
    jobs = list(Job.objects.filter(project=project, kind=Job.Kind.QUICK))
    assert len(jobs) == 1 and jobs[0].status == Job.Status.QUEUED and queued == [jobs[0].pk]
    # The worker takes it: every image of the project is rescored by a quick version.
    tasks.quick_update(jobs[0].pk)
    job = Job.objects.get(pk=jobs[0].pk)
    assert job.status == Job.Status.DONE and "from 8 labels" in job.message
    v = ModelVersion.objects.get(project=project, quick=True, is_active=True)
    after = IonImage.objects.filter(dataset__project=project)
    assert all(im.prediction_version_id == v.pk for im in after)
    assert any(abs(im.probability - before[im.pk]) > 1e-3 for im in after)
    # The page polls this to pick up the new scores.
    live = api.get(f"/api/projects/{project.slug}/live/").json()
    assert live["version"] == v.number and live["quick"] and live["labelled"] == 8 and not live["updating"]
    assert live["estimates"][-1]["n"] == 8
    # A label after the update queues the next one.
    im = IonImage.objects.filter(dataset__project=project, consensus__isnull=True).first()
    with django_capture_on_commit_callbacks(execute=True):
        api.put(f"/api/images/{im.pk}/label/", {"label": "on"}, format="json")
    assert Job.objects.filter(project=project, kind=Job.Kind.QUICK, status=Job.Status.QUEUED).count() == 1
    # A deleted project's job is tolerated.
    gone = Job.objects.filter(status=Job.Status.QUEUED, kind=Job.Kind.QUICK).first().pk
    project.delete()
    tasks.quick_update(gone)


def test_the_next_endpoint_returns_unlabelled_images_best_first(project, user, tmp_path, capsys, api):
    [ds] = make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    api.force_authenticate(user)
    ims = list(ds.images.order_by("index"))
    from webapp.datasets import labels

    labels.set_labels(project, ims[:3], user, "off")
    for strategy in ("active", "random", "probability"):
        r = api.get(f"/api/datasets/{ds.pk}/next/", {"n": 5, "strategy": strategy})
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["strategy"] == strategy and body["strategy_name"] and body["count"] == 5
        got = [x["id"] for x in body["results"]]
        assert len(set(got)) == 5 and not {im.pk for im in ims[:3]} & set(got)
        assert all(x["label"] is None and x["thumbnail_url"] for x in body["results"])
    probs = [
        x["probability"]
        for x in api.get(f"/api/datasets/{ds.pk}/next/?n=9&strategy=probability").json()["results"]
    ]
    assert probs == sorted(probs, reverse=True)
    assert api.get(f"/api/projects/{project.slug}/next/?n=3").json()["count"] == 3
    assert api.get(f"/api/datasets/{ds.pk}/next/?strategy=best").status_code == 400
    # The schema names the endpoint and its answer.
    schema = api.get("/api/schema/?format=json").json()
    assert "/api/datasets/{id}/next/" in schema["paths"]
    op = schema["paths"]["/api/datasets/{id}/next/"]["get"]
    assert "NextImages" in str(op["responses"]["200"])


def test_diversity_spreads_a_batch():
    from ionsieve_core.ml.active import select

    rng = np.random.default_rng(0)
    # Ten near-copies of one uncertain image, and 40 different, slightly less uncertain ones.
    base = rng.normal(size=16)
    copies = base + 0.01 * rng.normal(size=(10, 16))
    others = rng.normal(size=(40, 16)) * 3
    emb = np.vstack([copies, others]).astype(np.float32)
    u = np.r_[np.full(10, 0.99), rng.uniform(0.7, 0.9, 40)]
    plain = select(8, "active", uncertainty=u)  # no embeddings: uncertainty alone
    assert set(plain) <= set(range(10))
    spread = select(8, "active", uncertainty=u, embeddings=emb)
    assert len(set(spread) & set(range(10))) == 1 and len(set(spread)) == 8
    # Already labelled near-copies push the batch away from them altogether.
    away = select(8, "active", uncertainty=u, embeddings=emb, labelled_embeddings=copies[:2])
    assert not set(away) & set(range(10))
