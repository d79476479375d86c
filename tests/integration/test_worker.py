from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from tests.datasets.helpers import synthetic
from tests.factories import ProjectFactory, UserFactory
from tests.integration.conftest import wait_for
from webapp.datasets import services
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job

pytestmark = pytest.mark.integration


def test_it_runs_an_ingestion_through_redis_and_a_worker(worker, tmp_path):
    user = UserFactory()
    project = ProjectFactory(owner=user)
    truth = synthetic(tmp_path, seed=41)
    worker.start()
    with transaction.atomic():
        ds = services.create_imzml_dataset(project, user, name="via worker", imzml=Path(truth.imzml_path),
                                           ibd=Path(truth.ibd_path), top=8)
        job = services.start_processing(ds, user)
    done = wait_for(lambda: Job.objects.get(pk=job.pk).status in ("done", "failed"), what="ingest job", worker=worker)
    job.refresh_from_db()
    assert done and job.status == "done", (job.error, worker.log())
    assert job.progress == 1.0 and job.attempts == 1
    ds = Dataset.objects.get(pk=ds.pk)
    assert ds.status == "ready" and 1 <= ds.image_count <= 8
    assert ds.array_path.exists()
