"""The job watchdog's re-sending, without a broker: which jobs recover() sends, and how often."""
from __future__ import annotations

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


def test_it_resends_orphans_but_not_live_or_finished_jobs(db, user, sent):
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
