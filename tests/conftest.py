"""Shared fixtures: a temporary MEDIA_ROOT, users and projects from factories."""
from __future__ import annotations

import pytest

from tests.factories import ProjectFactory, UserFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Throttling would make repeated test logins flaky.
    settings.AXES_ENABLED = False


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
