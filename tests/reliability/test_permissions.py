"""Every URL pattern x every role x GET/POST/PUT/PATCH/DELETE.

The URL list is walked from the resolver, so a new endpoint is covered as soon as it is routed;
a URL parameter this file does not know fails the test (add it to `value_for`).

- never a 500;
- anonymous: pages redirect to the login page, the API answers 401/403;
- non-members: 404 (or 405) on everything that belongs to a project or a collection;
- viewers: never succeed at a write on a project's objects (403/405);
- viewers can read what their project holds.
"""

from __future__ import annotations

import importlib.util
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from tests.reliability.conftest import World, make_world

METHODS = ["get", "post", "put", "patch", "delete"]
WRITES = {"post", "put", "patch", "delete"}
ROLES = ["anonymous", "outsider", "viewer", "annotator", "owner"]
# Pages anyone may open (the login and sign-up forms, and logging out), and the API's description
# (drf-spectacular serves the schema and its viewers with AllowAny: endpoints, no data).
PUBLIC = {"login", "logout", "accounts:signup", "schema", "api-docs", "api-redoc"}
# Read-only pages render for any HTTP method (no require_safe): a viewer's "PUT" gets the page
# back, which changes nothing. Tolerated only while the database stays exactly as it was.
PAGES_IGNORING_METHOD = {
    "pages:project",
    "pages:project_gallery",
    "pages:review",
    "pages:dataset",
    "pages:gallery",
    "pages:image",
    "projects:members",
}
# The image import endpoint is routed before its reader exists: until ionsieve_core.imagesets lands, its
# POST answers 500 (for everyone, outsiders included: the import runs before the permission check).
UNFINISHED = {"project-imports"} if importlib.util.find_spec("ionsieve_core.imagesets") is None else set()
# Routes whose credential is an HMAC signature in the URL (signed thumbnails): the matrix calls
# them with a wrong signature, which every role must get 404 for (or 405 for a write); valid
# signatures are tested in tests/datasets/test_thumbnails.py.
SIGNED = {"signed-thumbnail"}
# POSTs a viewer may make: preparing a download (an export job) changes no project data, and
# viewers may download what they can see. Checked: nothing but the job row is added.
VIEWER_POSTS = {"project-exports"}
PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


def walk(patterns, prefix: str = "", namespace: str | None = None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = (
                p.namespace if not namespace else (f"{namespace}:{p.namespace}" if p.namespace else namespace)
            )
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + str(p.pattern), name


def routes() -> list[tuple[str, str]]:
    found = []
    for route, name in walk(get_resolver().url_patterns):
        params = [a or b for a, b in PARAM.findall(route)]
        if "format" in params:
            continue  # DRF's .json/.api suffix twins of routes listed anyway
        if route.startswith("admin/"):
            continue  # Django's admin: staff only, checked once below
        found.append((route, name))
    return found


ROUTES = routes()


def value_for(param: str, route: str, w: World):  # noqa: C901 - the one table of route parameters
    if param in ("slug", "project_slug"):
        return w.project.slug
    if param == "number":
        return w.model_version.number
    if param == "membership_id":
        return w.membership.pk
    if param == "pk":
        if "training-collections/" in route:
            return w.training_collection.pk
        if "collections/" in route:
            return w.collection.pk
        if "members" in route:
            return w.membership.pk
        if route.startswith(("api/datasets/", "datasets/")):
            return w.dataset.pk
        if route.startswith(("api/images/", "images/")):
            return w.image.pk
        if route.startswith("api/jobs/"):
            return w.job.pk
        if route.startswith("api/uploads/"):
            return w.upload.pk
        if route.startswith("api/exports/"):
            return w.export_job.pk
    if param == "name" and "/figures/" in route:
        return "image" if route.startswith("images/") else "tic"
    if "<str:sig>" in route:
        signed = {
            "dataset": w.dataset.pk,
            "index": w.image.index,
            "revision": w.dataset.revision,
            "expires": 4_000_000_000,
            "sig": "0" * 32,
        }
        if param in signed:
            return signed[param]
    raise AssertionError(
        f"test_permissions does not know what to put in <{param}> of {route!r}: teach value_for"
    )


def url_for(route: str, name: str, w: World) -> str:
    params = [a or b for a, b in PARAM.findall(route)]
    return reverse(name, kwargs={p: value_for(p, route, w) for p in params})


def is_scoped(route: str) -> bool:
    return bool(PARAM.findall(route))


def snapshot() -> list:
    """Every row of every table a request could change."""
    from django.apps import apps

    rows = []
    for label in (
        "projects",
        "datasets",
        "jobs",
        "classifier",
        "webapp_collections",
        "collections",
        "authtoken",
    ):
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models():
            rows.append((model._meta.label, list(model.objects.order_by("pk").values())))
    return rows


def client_for(role: str, w: World) -> APIClient:
    c = APIClient()
    c.raise_request_exception = False
    if role != "anonymous":
        c.force_login(w.users[role])
    return c


def call(c: APIClient, method: str, url: str):
    if method == "get":
        return c.get(url)
    return getattr(c, method)(url, {}, format="json")


@pytest.mark.parametrize("route,name", ROUTES, ids=[f"{n or r}" for r, n in ROUTES])
def test_it_answers_every_role_and_method_without_leaking(db, route, name):  # noqa: C901 - every role x method in one walk
    w = make_world()
    url = url_for(route, name, w)
    api = route.startswith("api/")
    collection_route = "collections/" in route and "training-collections" not in route
    problems = []
    before = snapshot()
    for role in ROLES:
        c = client_for(role, w)
        for method in METHODS:
            r = call(c, method, url)
            code = r.status_code
            where = f"{role} {method.upper()} {url} -> {code}"
            if code >= 500 and name in UNFINISHED and method == "post":
                continue
            if code >= 500:
                problems.append(where + " (server error)")
                continue
            if name in SIGNED:
                if code not in (404, 405):
                    problems.append(where + " (a wrongly signed URL must get 404)")
                continue
            if role == "anonymous":
                if name in PUBLIC:
                    continue
                if api:
                    if code not in (401, 403):
                        problems.append(where + " (anonymous API call not refused)")
                elif not (code == 302 and r["Location"].startswith(reverse("login"))) and code != 405:
                    problems.append(where + " (anonymous page not sent to the login page)")
            elif role == "outsider" and is_scoped(route):
                if code not in (404, 405):
                    problems.append(where + " (a non-member must get 404)")
            elif role == "viewer" and is_scoped(route):
                if method == "post" and name in VIEWER_POSTS and code == 202:
                    from webapp.jobs.models import Job

                    assert Job.objects.filter(kind=Job.Kind.EXPORT, created_by=w.users["viewer"]).exists()
                    continue
                if method in WRITES:
                    allowed = (403, 404, 405) if collection_route else (403, 405)
                    if code == 200 and name in PAGES_IGNORING_METHOD:
                        if snapshot() != before:
                            problems.append(where + " (a viewer's write changed the database)")
                    elif code not in allowed:
                        problems.append(where + " (a viewer's write must be refused with 403/405)")
                elif not collection_route and code not in (200, 403, 405):
                    problems.append(where + " (a viewer must be able to read the project)")
    assert not problems, "\n".join(problems)


def test_it_walks_every_kind_of_route():
    """The matrix really covers pages, the API and both kinds of objects."""
    names = {n for _, n in ROUTES}
    for expected in (
        "pages:project",
        "pages:image",
        "project-datasets",
        "image-label",
        "image-thumbnail",
        "model-activate",
        "job-cancel",
        "member-detail",
        "projects:delete",
    ):
        assert expected in names
    assert len(ROUTES) >= 50


def test_it_keeps_the_admin_for_staff(db):
    w = make_world()
    for role in ROLES:
        r = client_for(role, w).get("/admin/")
        assert r.status_code == 302 and "/admin/login/" in r["Location"], role
