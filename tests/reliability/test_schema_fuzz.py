"""Schemathesis against the app's own OpenAPI schema, in process (WSGI), no network.

One test per operation, 15 generated requests each, authenticated by API token as the owner of a
project with a ready dataset, labels, a job, a model version and a collection; path parameters
point at those real objects so the generated bodies and queries reach the code behind the
permission checks. The only property checked is the one that matters here: no 5xx.

Runs in the unit stage (`make test-unit`); derandomized so a failure reproduces.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.reliability.conftest import make_world

# Server errors found and not fixed yet, as (METHOD, path template): reason. Empty: the three this
# fuzzer found (tests below) are fixed.
KNOWN_500: dict[tuple[str, str], str] = {}


def load_schema():
    # Loaded at collection (schemathesis.pytest.from_fixture breaks on pytest 9: Function._nodeid).
    # The schema view needs no database; drf-spectacular serves it to anyone.
    from webapp.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


# A resumable upload's part (tus PATCH) is raw bytes: schemathesis has no serializer for it.
schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=64))
schema = load_schema()


@pytest.fixture
def fuzz_world(db):
    from django.core import signals
    from django.db import close_old_connections
    from rest_framework.authtoken.models import Token

    from webapp.datasets.labels import set_labels

    w = make_world()
    set_labels(w.project, list(w.dataset.images.all()[:3]), w.users["owner"], w.project.classes[0])
    w.token = Token.objects.create(user=w.users["owner"]).key
    # Calls go straight to the WSGI app, whose request_finished closes the connection; on the
    # file test database that would close it inside the test's transaction (Django's test Client
    # disconnects this too; the old in-memory database ignored close()).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield w
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def real_path_parameters(path: str, params: dict, w) -> dict:
    out = dict(params)
    for key in params:
        if key in ("slug", "project_slug"):
            out[key] = w.project.slug
        elif key == "number":
            out[key] = w.model_version.number
        elif key == "membership_id" or (key == "id" and "/members/" in path):
            out[key] = w.membership.pk
        elif key == "pk":
            if "training-collections" in path:
                out[key] = w.training_collection.pk
            elif "/collections/" in path:
                out[key] = w.collection.pk
            elif "/members/" in path:
                out[key] = w.membership.pk
            elif path.startswith("/api/datasets/"):
                out[key] = w.dataset.pk
            elif path.startswith("/api/images/"):
                out[key] = w.image.pk
            elif path.startswith("/api/jobs/"):
                out[key] = w.job.pk
    return out


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_it_never_answers_a_server_error(case, fuzz_world):
    case.path_parameters = real_path_parameters(case.path, case.path_parameters or {}, fuzz_world)
    response = case.call(headers={"Authorization": f"Token {fuzz_world.token}"})
    if response.status_code >= 500 and (case.method.upper(), case.path) in KNOWN_500:
        return  # a known bug, asserted by its own test
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n{response.text[:1500]}"
    )


def test_it_answers_404_for_a_non_numeric_member_id(fuzz_world):
    from rest_framework.test import APIClient

    c = APIClient()
    c.raise_request_exception = False
    c.force_login(fuzz_world.users["owner"])
    for method in ("get", "patch", "delete"):
        r = getattr(c, method)(f"/api/projects/{fuzz_world.project.slug}/members/abc/")
        assert r.status_code == 404, (method, r.status_code)


def test_it_refuses_a_member_update_that_is_not_an_object(fuzz_world):
    from rest_framework.test import APIClient

    c = APIClient()
    c.raise_request_exception = False
    c.force_login(fuzz_world.users["owner"])
    url = f"/api/projects/{fuzz_world.project.slug}/members/{fuzz_world.membership.pk}/"
    for body in ([], "viewer", 3):
        assert c.patch(url, body, format="json").status_code == 400, body


def test_it_refuses_image_ids_beyond_64_bits(fuzz_world):
    from rest_framework.test import APIClient

    c = APIClient()
    c.raise_request_exception = False
    c.force_login(fuzz_world.users["owner"])
    r = c.post(
        f"/api/projects/{fuzz_world.project.slug}/labels/", {"images": [2**70], "label": "on"}, format="json"
    )
    assert r.status_code == 400
