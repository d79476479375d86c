"""Faults with real processes: a worker SIGKILLed mid-job, the broker restarted, the disk failing.

Real Celery worker subprocesses (the `worker` fixture) on both set-ups: the embedded default
(SQLite file + filesystem broker) and PostgreSQL + Redis. The job watchdog
(webapp/jobs/dispatch.py) re-sends jobs whose heartbeat went stale, whatever the broker; the
tests shorten STALE_AFTER to 12 s through IONSIEVE_JOB_STALE_SECONDS (heartbeats come every
5 s) and the watchdog's round to 2 s.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from tests.datasets.helpers import synthetic
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from tests.integration.conftest import EMBEDDED, SERVER, Worker, backend, needs_backend, wait_for
from webapp.datasets.models import Dataset, IonImage, Label
from webapp.ingestion import services
from webapp.jobs import dispatch
from webapp.jobs.models import Job

pytestmark = pytest.mark.integration

STALE_SECONDS = 12
TEMP_PATTERNS = ("*.part", "*.build", "*.old", "*.tmp")


@pytest.fixture
def short_stale(monkeypatch):
    """Workers started after this treat a job as orphaned 12 s after its last heartbeat."""
    monkeypatch.setenv("IONSIEVE_JOB_STALE_SECONDS", str(STALE_SECONDS))
    monkeypatch.setenv("IONSIEVE_WATCHDOG_SECONDS", "2")


def leftovers(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for pat in TEMP_PATTERNS for p in directory.rglob(pat))


def second_worker(first: Worker, tmp_path: Path, name: str = "worker2.log") -> Worker:
    return Worker(first.media_root, tmp_path / name, first.broker_dir)


def kill_when(worker: Worker, job_id: int, fraction: float = 0.1, timeout: float = 120) -> Job:
    """SIGKILL the worker as soon as the job is RUNNING with progress above `fraction`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        assert job.status not in ("done", "failed", "cancelled"), (
            f"the job ended ({job.status}: {job.error}) before it could be interrupted; make it bigger\n{worker.log()}"
        )
        if job.status == "running" and job.progress > fraction:
            worker.kill()
            return Job.objects.get(pk=job_id)
        time.sleep(0.05)
    raise AssertionError(f"the job never got past {fraction:.0%}\n{worker.log()}")


def finished(job_id: int) -> bool:
    return Job.objects.get(pk=job_id).status in ("done", "failed", "cancelled")


# ---------------------------------------------------------------- worker killed mid-job
@pytest.mark.parametrize("kill_at", [0.1, 0.5], ids=["finding-peaks", "extracting"])
def test_it_finishes_an_ingestion_exactly_once_after_the_worker_is_killed(
    worker, tmp_path, short_stale, kill_at
):
    if kill_at == 0.1 and backend() == EMBEDDED:
        pytest.skip("where the ingestion is cut does not depend on the broker: one kill point is enough here")
    user = UserFactory()
    project = ProjectFactory(owner=user)
    truth = synthetic(
        tmp_path, "big", height=300, width=300, n_on=10, n_off=10, peaks_per_spectrum_noise=150, seed=7
    )
    with transaction.atomic():
        ds = services.create_imzml_dataset(
            project, user, name="big", imzml=Path(truth.imzml_path), ibd=Path(truth.ibd_path), top=150
        )
        job = services.start_ingestion(ds, user)
    worker.start(queues="ingest")
    killed = kill_when(worker, job.pk, fraction=kill_at)
    assert killed.status == "running" and killed.attempts == 1
    time.sleep(0.5)
    assert Job.objects.get(pk=job.pk).status == "running"  # nobody else touched it

    again = second_worker(worker, tmp_path).start(queues="ingest")
    try:
        wait_for(lambda: finished(job.pk), timeout=150, what="the recovered ingest job", worker=again)
        job.refresh_from_db()
        assert job.status == "done", (job.error, again.log())
        assert job.attempts == 2 and job.progress == 1.0
        assert Dataset.objects.filter(project=project).count() == 1
        ds.refresh_from_db()
        assert ds.status == "ready" and ds.error == ""
        indexes = list(IonImage.objects.filter(dataset=ds).values_list("index", flat=True))
        assert len(indexes) == ds.image_count == 150
        assert sorted(indexes) == list(range(150))  # no duplicate, no gap
        assert leftovers(ds.directory) == []
        assert len(list(ds.thumbs_dir.glob("*.png"))) == 150
        import numpy as np

        assert np.load(ds.array_path, mmap_mode="r").shape == (150, 300, 300)
    finally:
        again.stop()


def test_it_finishes_a_prediction_exactly_once_after_the_worker_is_killed(worker, tmp_path, short_stale):
    pytest.importorskip("ionsieve_core.ml")
    n_datasets, n_images = 8, 250
    from classifier.models import Prediction
    from classifier.scoring import start_scoring

    user = UserFactory()
    project = ProjectFactory(owner=user)
    datasets = [
        make_ready_dataset(project, n=n_images, shape=(48, 48), name=f"d{i}", seed=i, thumbnails=False)
        for i in range(n_datasets)
    ]
    Prediction.objects.filter(image__dataset__project=project).delete()
    IonImage.objects.filter(dataset__project=project).update(probability=None, probabilities=None)
    with transaction.atomic():
        job = start_scoring(project, user)
    worker.start(queues="predict")
    kill_when(worker, job.pk, fraction=0.1)
    again = second_worker(worker, tmp_path).start(queues="predict")
    try:
        wait_for(lambda: finished(job.pk), timeout=150, what="the recovered prediction job", worker=again)
        job.refresh_from_db()
        assert job.status == "done", (job.error, again.log())
        assert job.attempts == 2
        images = IonImage.objects.filter(dataset__in=datasets)
        assert images.count() == n_datasets * n_images
        assert not images.filter(probability__isnull=True).exists()
        # One default prediction per image: nothing duplicated by the second attempt.
        assert Prediction.objects.filter(image__dataset__in=datasets).count() == n_datasets * n_images
        assert (
            Prediction.objects.filter(image__dataset__in=datasets, model_version__isnull=True).count()
            == n_datasets * n_images
        )
    finally:
        again.stop()


def test_it_finishes_a_training_exactly_once_after_the_worker_is_killed(worker, tmp_path, short_stale):
    pytest.importorskip("ionsieve_core.ml")
    import numpy as np

    from classifier.models import ModelVersion, TrainingRun
    from classifier.training import start_training
    from webapp.datasets.labels import set_labels

    user = UserFactory()
    project = ProjectFactory(owner=user)
    for i in range(3):
        ds = make_ready_dataset(project, n=40, shape=(32, 32), name=f"d{i}", seed=i, thumbnails=False)
        images = list(ds.images.order_by("index"))
        rng = np.random.default_rng(i)
        for im, v in zip(images, rng.integers(0, 2, len(images)), strict=True):
            set_labels(project, [im], user, project.classes[int(v)])
    with transaction.atomic():
        run = start_training(project, user, {"epochs": 3, "folds": 3, "ensemble": 1})
    job_id = run.job_id
    worker.start(queues="train")
    kill_when(worker, job_id, fraction=0.1, timeout=240)
    again = second_worker(worker, tmp_path).start(queues="train,predict")
    try:
        wait_for(lambda: finished(job_id), timeout=240, what="the recovered training job", worker=again)
        job = Job.objects.get(pk=job_id)
        assert job.status == "done", (job.error, again.log())
        assert job.attempts == 2
        assert ModelVersion.objects.filter(project=project).count() == 1
        version = ModelVersion.objects.get(project=project)
        assert version.is_active and version.number == 1
        assert TrainingRun.objects.get(pk=run.pk).model_version_id == version.pk
        assert Path(version.path).exists()
        assert leftovers(Path(version.path).parent) == []
        assert Label.objects.filter(image__dataset__project=project).count() == 120  # labels untouched
    finally:
        again.stop()


# ---------------------------------------------------------------- the broker restarted
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A Redis of our own (scripts/services.sh's command, another port): stopping it cannot
    disturb anyone else using the shared Redis on 6379."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (scripts/services.sh)")
        self.proc = subprocess.Popen(
            [
                exe,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=20, what="redis to start")

    def ping(self) -> bool:
        return (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            == "PONG"
        )

    def shutdown(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        if self.proc:
            self.proc.wait(timeout=20)
        assert not self.ping()


@pytest.fixture
def private_redis(tmp_path, settings, monkeypatch):
    from webapp.celery import app

    needs_backend(SERVER)
    r = PrivateRedis(tmp_path)
    r.start()
    old = app.conf.broker_url
    settings.CELERY_BROKER_URL = r.url
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", r.url)

    def use(url: str) -> None:
        app.conf.broker_url = url
        app._pool = None  # producers reconnect to the new URL
        app.amqp._producer_pool = None

    use(r.url)
    cache.clear()
    yield r
    monkeypatch.setenv("CELERY_BROKER_URL", old)
    use(old)
    cache.clear()
    if r.proc and r.proc.poll() is None:
        r.shutdown()


def upload(client: APIClient, slug: str, truth, name: str):
    with open(truth.imzml_path, "rb") as imzml, open(truth.ibd_path, "rb") as ibd:
        return client.post(
            f"/api/projects/{slug}/datasets/",
            {"imzml": imzml, "ibd": ibd, "name": name, "top": 6},
            format="multipart",
        )


def queued_uploads(client: APIClient, slug: str, tmp_path, n: int) -> list[Job]:
    """Upload n generated datasets (no worker runs yet: their jobs wait in the queue)."""
    jobs = []
    for i in range(n):
        response = upload(client, slug, synthetic(tmp_path, f"up{i}", seed=i), f"before {i}")
        assert response.status_code == 202, response.content
        jobs.append(Job.objects.get(target_id=response.json()["id"], kind="ingest"))
    return jobs


def test_it_keeps_pages_up_and_runs_every_job_once_across_a_redis_restart(worker, tmp_path, private_redis):
    user = UserFactory()
    project = ProjectFactory(owner=user)
    api = APIClient()
    api.force_authenticate(user)
    # Two uploads while Redis is up; no worker runs, so they wait in the queue.
    before = queued_uploads(api, project.slug, tmp_path, 2)
    assert all(Job.objects.get(pk=j.pk).dispatched_at is not None for j in before)

    private_redis.shutdown()  # the queued messages are lost with it (no persistence)
    cache.clear()
    from django.test import Client

    page = Client()
    page.force_login(user)
    for url in ("/", f"/p/{project.slug}/"):
        started = time.monotonic()
        response = page.get(url)
        assert response.status_code == 200, url
        assert "job queue is unavailable" in response.content.decode(), url
        assert time.monotonic() - started < 5, f"{url} waited for the broker"
    # An upload while Redis is down is saved, with a clear waiting message.
    response = upload(api, project.slug, synthetic(tmp_path, "down", seed=9), "while down")
    assert response.status_code == 202, response.content
    during = Job.objects.get(target_id=response.json()["id"], kind="ingest")
    assert during.status == "queued" and during.dispatched_at is None
    assert during.message == dispatch.QUEUE_DOWN_MESSAGE
    jobs_api = api.get(f"/api/projects/{project.slug}/jobs/?active=1").json()
    assert any(j["id"] == during.pk and "queue is unavailable" in j["message"] for j in jobs_api)

    private_redis.start()
    cache.clear()
    assert "job queue is unavailable" not in page.get("/").content.decode()
    worker.start(queues="ingest")
    ids = [j.pk for j in before] + [during.pk]
    wait_for(
        lambda: all(finished(i) for i in ids), timeout=120, what="the jobs after the restart", worker=worker
    )
    for job in Job.objects.filter(pk__in=ids):
        assert job.status == "done", (job.error, worker.log())
        assert job.attempts == 1, f"job {job.pk} ran {job.attempts} times"
        assert job.message != dispatch.QUEUE_DOWN_MESSAGE
    assert Dataset.objects.filter(project=project, status="ready").count() == 3
    for ds in Dataset.objects.filter(project=project):
        assert IonImage.objects.filter(dataset=ds).count() == ds.image_count > 0


def test_it_runs_every_job_once_when_the_queue_folder_is_lost_and_the_worker_restarts(
    worker, tmp_path, short_stale
):
    """The embedded default's "broker restart": the filesystem broker forgets a message once a
    worker takes it, so a worker killed at the wrong moment (or a wiped var/broker/) loses queued
    jobs. The next worker's watchdog sees queued jobs whose message is not in the folder and
    re-sends them; the worker recreates the folders itself (no scripts/run.sh)."""
    needs_backend(EMBEDDED)
    user = UserFactory()
    project = ProjectFactory(owner=user)
    api = APIClient()
    api.force_authenticate(user)
    before = queued_uploads(api, project.slug, tmp_path, 2)
    assert dispatch.waiting_job_ids() == {j.pk for j in before}
    shutil.rmtree(worker.broker_dir)  # every queued message is gone, and the folders with them
    # Noticed a while later (the watchdog leaves just-sent jobs alone).
    Job.objects.filter(pk__in=[j.pk for j in before]).update(
        dispatched_at=timezone.now() - timedelta(minutes=5)
    )
    from django.test import Client

    page = Client()
    page.force_login(user)
    assert page.get(f"/p/{project.slug}/").status_code == 200

    worker.start(queues="ingest")  # started by hand, on a broker folder that does not exist
    wait_for(
        lambda: (worker.broker_dir / "queue").is_dir(), timeout=60, what="the broker folders", worker=worker
    )
    response = upload(api, project.slug, synthetic(tmp_path, "after", seed=9), "after the restart")
    assert response.status_code == 202, response.content
    ids = [j.pk for j in before] + [Job.objects.get(target_id=response.json()["id"], kind="ingest").pk]
    wait_for(
        lambda: all(finished(i) for i in ids), timeout=120, what="the jobs after the restart", worker=worker
    )
    for job in Job.objects.filter(pk__in=ids):
        assert job.status == "done", (job.error, worker.log())
        assert job.attempts == 1, f"job {job.pk} ran {job.attempts} times"
    assert Dataset.objects.filter(project=project, status="ready").count() == 3


# ---------------------------------------------------------------- the disk failing
def test_it_fails_cleanly_when_the_results_cannot_be_written(worker, tmp_path):
    """A directory where the worker must write a file (as root, chmod would not stop us)."""
    user = UserFactory()
    project = ProjectFactory(owner=user)
    other_user = UserFactory()
    other = ProjectFactory(owner=other_user)
    good = make_ready_dataset(other, n=20, name="other group's data")
    add_member(other, user, "viewer")
    good_files = {p: p.stat().st_mtime_ns for p in good.directory.rglob("*") if p.is_file()}
    truth = synthetic(tmp_path, "blocked", seed=3)
    with transaction.atomic():
        ds = services.create_imzml_dataset(
            project, user, name="blocked", imzml=Path(truth.imzml_path), ibd=Path(truth.ibd_path), top=8
        )
        ds.array_path.mkdir(parents=True)
        (ds.array_path / "in-the-way").write_text("x")
        job = services.start_ingestion(ds, user)
    worker.start(queues="ingest")
    wait_for(lambda: finished(job.pk), timeout=90, what="the ingest job", worker=worker)
    job.refresh_from_db()
    ds.refresh_from_db()
    assert job.status == "failed"
    assert "could not write the results" in job.error and "internal error" not in job.error
    assert ds.status == "failed" and "could not write the results" in ds.error
    assert IonImage.objects.filter(dataset=ds).count() == 0 and ds.image_count == 0
    assert leftovers(ds.directory) == []
    # Other data untouched.
    good.refresh_from_db()
    assert good.status == "ready" and IonImage.objects.filter(dataset=good).count() == 20
    assert {p: p.stat().st_mtime_ns for p in good.directory.rglob("*") if p.is_file()} == good_files
    # The worker is still alive and takes the next job.
    (ds.array_path / "in-the-way").unlink()
    ds.array_path.rmdir()
    with transaction.atomic():
        job2 = services.start_ingestion(ds, user)
    wait_for(lambda: finished(job2.pk), timeout=90, what="the retried ingest job", worker=worker)
    assert Job.objects.get(pk=job2.pk).status == "done"
    assert IonImage.objects.filter(dataset=ds).count() == Dataset.objects.get(pk=ds.pk).image_count > 0


def test_it_reports_a_full_disk_during_ingestion_without_a_half_dataset(
    transactional_db, tmp_path, monkeypatch, settings
):
    """ENOSPC at the atomic rename of a derived file (in-process: os.replace is patched)."""
    from webapp.datasets import storage

    user = UserFactory()
    project = ProjectFactory(owner=user)
    truth = synthetic(tmp_path, "full", seed=5)
    ds = services.create_imzml_dataset(
        project, user, name="full", imzml=Path(truth.imzml_path), ibd=Path(truth.ibd_path), top=8
    )
    job = Job.objects.create(project=project, kind=Job.Kind.INGEST, target_id=ds.pk, created_by=user)
    real_replace = os.replace

    def full(src, dst, *a, **kw):
        if str(dst).endswith("thumbs"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(storage.os, "replace", full)
    from webapp.ingestion.tasks import ingest_dataset

    ingest_dataset.run(job.pk)  # through run_job: claim, heartbeat, fail
    job.refresh_from_db()
    ds.refresh_from_db()
    assert job.status == "failed" and "No space left on device" in job.error
    assert ds.status == "failed" and "No space left on device" in ds.error
    assert IonImage.objects.filter(dataset=ds).count() == 0
    # No half-written file; (the built thumbnail folder stays until the next attempt replaces it).
    assert list(ds.directory.rglob("*.part")) == []


def test_it_refuses_an_upload_when_the_disk_is_full(transactional_db, tmp_path, monkeypatch):
    from webapp.datasets import storage

    user = UserFactory()
    project = ProjectFactory(owner=user)
    other = make_ready_dataset(project, n=5)
    api = APIClient()
    api.force_authenticate(user)

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage.shutil, "move", full)
    monkeypatch.setattr(storage.shutil, "copyfile", full)
    monkeypatch.setattr(storage.os, "replace", full)
    response = upload(api, project.slug, synthetic(tmp_path, "nospace", seed=2), "no space")
    assert response.status_code == 400
    assert "could not store the files" in response.json()["detail"]
    assert "No space left on device" in response.json()["detail"]
    assert list(Dataset.objects.filter(project=project)) == [other]
    assert not Job.objects.filter(project=project, kind="ingest").exists()
    datasets_dir = Path(other.directory).parent
    assert sorted(p.name for p in datasets_dir.iterdir()) == [str(other.pk)]
