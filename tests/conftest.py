"""Shared fixtures: a temporary MEDIA_ROOT, users and projects from factories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import ProjectFactory, UserFactory

# webapp.wsgi tunes the garbage collector of the process that imports it (a server's); the
# tests that import it should leave this process's collector as Python sets it.
os.environ.setdefault("IONSIEVE_GC_TUNING", "0")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path, request):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Tasks run in the test process; the integration suite uses a real worker instead.
    from webapp.celery import app

    app.conf.task_always_eager = request.node.get_closest_marker("integration") is None
    if settings.CELERY_BROKER_URL.startswith("filesystem://") and app.conf.task_always_eager:
        # The watchdog reads the broker's queue folder: never the checkout's own var/broker,
        # where a `make run` may have left messages (job ids that collide with the test's).
        folders = {
            k: str(tmp_path / "test-broker" / Path(v).name)
            for k, v in settings.CELERY_BROKER_TRANSPORT_OPTIONS.items()
            if k.endswith("folder") or k.startswith("data_folder")
        }
        for folder in folders.values():
            Path(folder).mkdir(parents=True, exist_ok=True)
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, **folders}
    # Throttling would make repeated test logins flaky.
    settings.AXES_ENABLED = False
    # The per-process cache outlives each test's database; ids are reused between tests, so an
    # entry keyed by an id (a version's held-out estimate) would answer for another test's row.
    from django.core.cache import cache

    cache.clear()
    # Live updates (a quick update after labels) are tested on their own (tests/active); elsewhere
    # they would run inline after every label of an eager test.
    settings.IONSIEVE_LIVE_UPDATE_LABELS = 0


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def project(db, user):
    return ProjectFactory(owner=user)


@pytest.fixture
def api(client):
    from rest_framework.test import APIClient

    return APIClient()
