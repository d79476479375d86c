from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from tests.datasets.helpers import synthetic
from tests.factories import ProjectFactory, UserFactory
from tests.integration.conftest import EMBEDDED, SERVER, backend, needs_backend, use_broker_folder, wait_for
from webapp.datasets.models import Dataset
from webapp.ingestion import services
from webapp.jobs.models import Job

pytestmark = pytest.mark.integration


def test_it_runs_an_ingestion_through_the_broker_and_a_worker(worker, tmp_path, settings):
    user = UserFactory()
    project = ProjectFactory(owner=user)
    truth = synthetic(tmp_path, seed=41)
    if backend() == EMBEDDED:
        # Started by hand on a broker folder that does not exist yet: it used to crash with
        # FileNotFoundError (only scripts/run.sh made the folders); settings create them now.
        worker.broker_dir = tmp_path / "fresh" / "broker"
        worker.start()
        wait_for(lambda: "ready" in worker.log(), timeout=60, what="the worker to be ready", worker=worker)
        assert worker.proc.poll() is None, worker.log()
        use_broker_folder(worker.broker_dir, settings)
    else:
        worker.start()
    with transaction.atomic():
        ds = services.create_imzml_dataset(
            project, user, name="via worker", imzml=Path(truth.imzml_path), ibd=Path(truth.ibd_path), top=8
        )
        job = services.start_ingestion(ds, user)
    done = wait_for(
        lambda: Job.objects.get(pk=job.pk).status in ("done", "failed"), what="ingest job", worker=worker
    )
    job.refresh_from_db()
    assert done and job.status == "done", (job.error, worker.log())
    assert job.progress == 1.0 and job.attempts == 1
    ds = Dataset.objects.get(pk=ds.pk)
    assert ds.status == "ready" and 1 <= ds.image_count <= 8
    assert ds.array_path.exists()


def test_it_trains_and_predicts_through_the_worker(worker, tmp_path):
    # The embedded pass trains and predicts through its worker in the fault tests already.
    needs_backend(SERVER)
    pytest.importorskip("ionsieve_core.ml")
    from classifier import scoring, training
    from classifier.models import ModelVersion
    from webapp.datasets import labels

    user = UserFactory()
    project = ProjectFactory(owner=user)
    datasets = []
    for i in range(3):
        truth = synthetic(tmp_path, f"d{i}", seed=60 + i, n_on=6, n_off=6)
        ds = services.create_imzml_dataset(
            project,
            user,
            name=f"d{i}",
            imzml=Path(truth.imzml_path),
            ibd=Path(truth.ibd_path),
            mz_list=_mz_list(tmp_path / f"l{i}.csv", truth),
        )
        services.run_ingestion(ds)  # ingestion in-process; training and scoring go through the worker
        images = list(ds.images.order_by("index"))
        for im, (_mz, lab) in zip(images, truth.ions, strict=True):
            labels.set_labels(project, [im], user, lab)
        datasets.append(ds)
    worker.start(queues="train,predict")
    with transaction.atomic():
        run = training.start_training(project, user, {"folds": 3, "epochs": 2})
    wait_for(
        lambda: Job.objects.get(pk=run.job_id).status in ("done", "failed"),
        timeout=300,
        what="training",
        worker=worker,
    )
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "done", (job.error, worker.log())
    version = ModelVersion.objects.get(project=project)
    assert version.is_active and version.label_total == 36 and version.metrics["overall"]["n"] == 36
    assert version.path.exists()
    # Training scored every dataset with the new model.
    assert all(ds.images.filter(prediction_version=version).count() == 12 for ds in datasets)
    with transaction.atomic():
        pjob = scoring.start_scoring(project, user)
    wait_for(
        lambda: Job.objects.get(pk=pjob.pk).status in ("done", "failed"),
        timeout=120,
        what="prediction",
        worker=worker,
    )
    assert Job.objects.get(pk=pjob.pk).status == "done"
    assert Job.objects.get(pk=pjob.pk).message == "36 images scored"


def _mz_list(path, truth):
    path.write_text("mz,name\n" + "".join(f"{mz!r},ion{n}\n" for n, (mz, _) in enumerate(truth.ions)))
    return path
