from __future__ import annotations

import pytest

from tests.factories import UserFactory, add_member
from tests.gallery_data import make_ready_dataset


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 costs ~0.3 s per user; these tests are about pages, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(project, user):
    """Owner, annotator, viewer and an outsider of `project`."""
    annotator, viewer, outsider = UserFactory(), UserFactory(), UserFactory()
    add_member(project, annotator, "annotator")
    add_member(project, viewer, "viewer")
    return {"owner": user, "annotator": annotator, "viewer": viewer, "outsider": outsider}


@pytest.fixture
def dataset(project, user):
    return make_ready_dataset(project, n=12, user=user)
