"""The job watchdog's re-sending, without a broker: which jobs recover() sends, and how often."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ProjectFactory
from webapp.jobs import dispatch
from webapp.jobs.models import Job


@pytest.fixture
def sent(monkeypatch):
    ids: list[int] = []

    def fake_send(job_id: int) -> bool:
        ids.append(job_id)
        Job.objects.filter(pk=job_id).update(dispatched_at=timezone.now())
        return True

    monkeypatch.setattr(dispatch, "send", fake_send)
    return ids


def job(project, status, **kw) -> Job:
    j = Job.objects.create(project=project, kind=Job.Kind.INGEST, status=status)
    Job.objects.filter(pk=j.pk).update(**kw)
    return j


def test_it_resends_orphans_but_not_live_or_finished_jobs(db, user, sent, settings):
    settings.CELERY_BROKER_URL = "amqp://guest@127.0.0.1:5672//"  # a broker that keeps its messages
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    never_sent = job(project, Job.Status.QUEUED, created_at=long_ago)
    queued = job(project, Job.Status.QUEUED, created_at=long_ago, dispatched_at=long_ago)
    orphan = job(project, Job.Status.RUNNING, heartbeat_at=long_ago, dispatched_at=long_ago)
    job(project, Job.Status.RUNNING, heartbeat_at=timezone.now(), dispatched_at=long_ago)  # alive
    job(project, Job.Status.DONE, heartbeat_at=long_ago, dispatched_at=long_ago)
    assert dispatch.recover() == 2
    assert sorted(sent) == sorted([never_sent.pk, orphan.pk])
    sent.clear()
    assert dispatch.recover(broker_restarted=True) >= 1
    assert queued.pk in sent


def test_it_does_not_flood_the_queue_with_an_orphan_nobody_takes(db, user, sent):
    """Every worker's watchdog calls recover() every 10 s. An orphaned job whose queue has no
    free worker (a training job while the GPU host is down) must not be re-sent at every tick:
    one message per STALE_AFTER is enough (the messages pile up in Redis otherwise)."""
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    orphan = job(project, Job.Status.RUNNING, heartbeat_at=long_ago, dispatched_at=long_ago)
    for _ in range(6):  # a minute of watchdog ticks, from one or several workers
        dispatch.recover()
    assert sent == [orphan.pk]


def test_it_keeps_beating_after_a_database_hiccup(transactional_db, user, monkeypatch):
    """One failed heartbeat (database restarted, "database is locked") must not stop the beats:
    a job whose heartbeat stops looks dead after STALE_AFTER and is run a second time while the
    first worker is still on it."""
    import time

    from django.db import OperationalError
    from django.db.models import QuerySet

    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    j = job(project, Job.Status.RUNNING, heartbeat_at=long_ago)
    monkeypatch.setattr(dispatch, "HEARTBEAT_SECONDS", 0.05)
    real_update = QuerySet.update
    calls = {"n": 0}

    def flaky_update(self, **kw):
        if "heartbeat_at" in kw:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OperationalError("database is locked")
        return real_update(self, **kw)

    monkeypatch.setattr(QuerySet, "update", flaky_update)
    with dispatch.Heartbeat(j.pk):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and calls["n"] < 3:
            time.sleep(0.05)
    assert calls["n"] >= 3, "the heartbeat thread died at the first database error"
    assert Job.objects.get(pk=j.pk).heartbeat_at > long_ago


# ---------------------------------------------------------------- every broker, not only Redis
def test_it_recovers_a_stale_running_job_on_the_filesystem_broker(db, user, sent, settings):
    """The embedded default (`make run`): a SIGKILLed worker's job used to stay "running" for
    ever because the watchdog only acted when Redis answered."""
    assert settings.CELERY_BROKER_URL.startswith("filesystem://")
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    orphan = job(project, Job.Status.RUNNING, heartbeat_at=long_ago, dispatched_at=long_ago)
    job(project, Job.Status.RUNNING, heartbeat_at=timezone.now(), dispatched_at=long_ago)  # alive
    assert dispatch.Watchdog().tick() == 1
    assert sent == [orphan.pk]


@pytest.mark.parametrize("url", ["amqp://guest@127.0.0.1:5672//", "sqs://"])
def test_it_recovers_a_stale_running_job_on_any_other_broker(db, user, sent, settings, url):
    settings.CELERY_BROKER_URL = url
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    orphan = job(project, Job.Status.RUNNING, heartbeat_at=long_ago, dispatched_at=long_ago)
    job(project, Job.Status.QUEUED, created_at=long_ago, dispatched_at=long_ago)  # its broker keeps messages
    assert dispatch.Watchdog().tick() == 1
    assert sent == [orphan.pk]


def test_it_waits_for_redis_before_sending_and_resends_queued_jobs_when_it_is_back(
    db, user, sent, settings, monkeypatch
):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    queued = job(project, Job.Status.QUEUED, created_at=long_ago, dispatched_at=long_ago)
    identity = {"id": None}
    monkeypatch.setattr(dispatch, "broker_identity", lambda: identity["id"])
    watchdog = dispatch.Watchdog()
    assert watchdog.tick() == 0 and sent == []  # Redis down: nothing can be sent
    identity["id"] = "run-1"
    assert watchdog.tick() == 1 and sent == [queued.pk]  # first contact: queued messages may be lost
    assert watchdog.tick() == 0  # same Redis: nothing more
    identity["id"] = "run-2"  # restarted, empty
    assert watchdog.tick() == 1 and sent == [queued.pk, queued.pk]


@pytest.fixture
def queue_folder(tmp_path, settings):
    """A private filesystem-broker folder, and a function that puts a real job message in it."""
    from kombu import Connection

    from webapp.celery import app

    folders = {name: tmp_path / "broker" / name for name in ("queue", "processed", "control")}
    for f in folders.values():
        f.mkdir(parents=True)
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options

    def put(job_id: int) -> None:
        with Connection("filesystem://", transport_options=options) as conn, warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # "task_always_eager has no effect on send_task": we want a message
            app.send_task(Job.TASKS[Job.Kind.INGEST], args=[job_id], connection=conn, retry=False)

    put.folder = folders["queue"]
    return put


def test_it_resends_a_queued_job_whose_message_left_the_filesystem_queue(db, user, sent, queue_folder):
    """The filesystem broker forgets a message as soon as a worker takes it: a worker killed
    between taking it and starting the job (or a deleted queue folder) lost the job."""
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    lost = job(project, Job.Status.QUEUED, created_at=long_ago, dispatched_at=long_ago)
    waiting = job(project, Job.Status.QUEUED, created_at=long_ago, dispatched_at=long_ago)
    job(project, Job.Status.QUEUED, created_at=long_ago, dispatched_at=timezone.now())  # just sent
    queue_folder(waiting.pk)
    assert dispatch.waiting_job_ids() == {waiting.pk}
    assert dispatch.Watchdog().tick() == 1
    assert sent == [lost.pk]


def test_it_does_not_pile_up_messages_for_a_stale_job_nobody_takes(db, user, sent, queue_folder):
    project = ProjectFactory(owner=user)
    long_ago = timezone.now() - timedelta(hours=1)
    orphan = job(project, Job.Status.RUNNING, heartbeat_at=long_ago, dispatched_at=long_ago)
    queue_folder(orphan.pk)  # re-sent earlier; no worker for its queue has taken it yet
    Job.objects.filter(pk=orphan.pk).update(dispatched_at=long_ago)
    assert dispatch.Watchdog().tick() == 0 and sent == []


def test_it_creates_the_broker_folders_wherever_the_broker_is_configured(tmp_path):
    """A worker started by hand (`celery -A webapp worker`) crashed with FileNotFoundError on
    var/broker/queue: only scripts/run.sh created the folders."""
    import os
    import subprocess
    import sys

    from tests.reliability.livesite import ROOT

    broker = tmp_path / "nowhere" / "broker"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "CELERY_BROKER_URL": "filesystem://",
        "IONSIEVE_BROKER_DIR": str(broker),
    }
    code = "from webapp.celery import app; print(app.conf.broker_transport_options['data_folder_in'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(broker / "queue")
    assert sorted(p.name for p in broker.iterdir()) == ["control", "processed", "queue"]


def test_it_fails_a_job_that_stopped_its_worker_too_many_times(db, user):
    from tests.gallery_data import make_ready_dataset
    from webapp.datasets.models import Dataset

    project = ProjectFactory(owner=user)
    ds = make_ready_dataset(project, n=3)
    Dataset.objects.filter(pk=ds.pk).update(status=Dataset.Status.PROCESSING, progress=0.4)
    long_ago = timezone.now() - timedelta(hours=1)
    j = Job.objects.create(project=project, kind=Job.Kind.INGEST, target_id=ds.pk, status=Job.Status.RUNNING)
    Job.objects.filter(pk=j.pk).update(heartbeat_at=long_ago, attempts=dispatch.MAX_ATTEMPTS)
    assert dispatch.claim(j.pk) is None
    j.refresh_from_db()
    assert j.status == "failed" and "stopped 3 times" in j.error
    ds.refresh_from_db()
    assert ds.status == "failed" and "stopped 3 times" in ds.error  # not "processing" for ever
