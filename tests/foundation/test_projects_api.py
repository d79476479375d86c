from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from tests.factories import ProjectFactory, UserFactory, add_member
from webapp.projects.models import Project

pytestmark = pytest.mark.django_db


def test_it_lists_my_projects_with_my_role(api, user, project):
    other = ProjectFactory(name="Other")
    shared = ProjectFactory(name="Shared")
    add_member(shared, user, "viewer")
    api.force_authenticate(user)
    r = api.get("/api/projects/")
    assert r.status_code == 200
    rows = {p["slug"]: p for p in r.json()["results"]}
    assert set(rows) == {project.slug, shared.slug}
    assert rows[project.slug]["role"] == "owner" and rows[shared.slug]["role"] == "viewer"
    assert rows[project.slug]["classes"] == ["off", "on"] and rows[project.slug]["task"] == "binary"
    assert api.get(f"/api/projects/{other.slug}/").status_code == 404
    assert api.get(f"/api/projects/{shared.slug}/").json()["role"] == "viewer"


def test_it_accepts_token_authentication(api, user, project):
    call_command("drf_create_token", user.username)
    key = Token.objects.get(user=user).key
    assert api.get("/api/projects/").status_code in (401, 403)
    r = api.get(f"/api/projects/{project.slug}/", HTTP_AUTHORIZATION=f"Token {key}")
    assert r.status_code == 200 and r.json()["name"] == project.name


def test_it_creates_projects_through_the_api(api, user):
    api.force_authenticate(user)
    r = api.post(
        "/api/projects/", {"name": "Atlas", "task": "multilabel", "classes": ["a", "b"]}, format="json"
    )
    assert r.status_code == 201, r.content
    assert r.json()["role"] == "owner"
    r = api.post("/api/projects/", {"name": "atlas", "task": "binary"}, format="json")
    assert r.status_code == 400 and "already have" in r.json()["detail"]


def test_it_manages_members_through_the_api(api, user, project):
    bob = UserFactory()
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{project.slug}/members/", {"user": bob.username, "role": "viewer"}, format="json"
    )
    assert r.status_code == 201
    mid = r.json()["id"]
    r = api.post(f"/api/projects/{project.slug}/members/", {"user": "ghost", "role": "viewer"}, format="json")
    assert r.status_code == 400 and "No user" in r.json()["detail"]
    api.force_authenticate(bob)
    assert api.get(f"/api/projects/{project.slug}/members/").status_code == 200
    assert (
        api.patch(
            f"/api/projects/{project.slug}/members/{mid}/", {"role": "owner"}, format="json"
        ).status_code
        == 403
    )
    assert api.delete(f"/api/projects/{project.slug}/").status_code == 403
    api.force_authenticate(user)
    assert (
        api.patch(
            f"/api/projects/{project.slug}/members/{mid}/", {"role": "annotator"}, format="json"
        ).json()["role"]
        == "annotator"
    )
    assert api.delete(f"/api/projects/{project.slug}/members/{mid}/").status_code == 204


def test_it_hides_projects_from_non_members(api, project):
    stranger = UserFactory()
    api.force_authenticate(stranger)
    assert api.get(f"/api/projects/{project.slug}/").status_code == 404
    assert api.get(f"/api/projects/{project.slug}/members/").status_code == 404
    assert api.delete(f"/api/projects/{project.slug}/").status_code == 404
    assert Project.objects.filter(pk=project.pk).exists()
