"""The live update through a real worker: labels sent to the API queue one job; the worker waits
for a pause in labelling, then rescores the project from a quick version."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from classifier import scoring
from classifier.models import ModelVersion
from tests.factories import ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset
from tests.integration.conftest import wait_for
from webapp.jobs.models import Job

pytestmark = pytest.mark.integration


def test_labels_through_the_api_get_a_live_update_from_the_worker(worker, settings):
    settings.IONSIEVE_LIVE_UPDATE_LABELS = 10
    user = UserFactory()
    project = ProjectFactory(owner=user)
    ds = make_ready_dataset(project, n=40, shape=(20, 20), thumbnails=False)
    scoring.score_dataset(ds)  # the default score, and the embeddings beside it
    before = dict(ds.images.values_list("pk", "probability"))
    api = APIClient()
    api.force_authenticate(user)
    images = list(ds.images.order_by("index"))
    for i, im in enumerate(images[:6]):
        r = api.put(f"/api/images/{im.pk}/label/", {"label": "off" if i % 2 else "on"}, format="json")
        assert r.status_code == 200
    jobs = list(Job.objects.filter(project=project, kind=Job.Kind.QUICK))
    assert len(jobs) == 1  # six labels, one job; nothing was fitted inside the requests
    assert not ModelVersion.objects.filter(project=project).exists()
    worker.start(queues="predict")
    wait_for(
        lambda: Job.objects.get(pk=jobs[0].pk).status in ("done", "failed"),
        timeout=180,
        what="the live update",
        worker=worker,
    )
    job = Job.objects.get(pk=jobs[0].pk)
    assert job.status == "done" and "from 6 labels" in job.message, (job.message, job.error, worker.log())
    v = ModelVersion.objects.get(project=project, is_active=True)
    assert v.quick
    after = dict(ds.images.values_list("pk", "probability"))
    assert set(ds.images.values_list("prediction_version", flat=True)) == {v.pk}
    assert any(abs(after[k] - before[k]) > 1e-3 for k in before)
    assert np.isfinite(list(after.values())).all()
