from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets.access import dataset_for, image_for
from webapp.projects.access import membership_for, project_for
from webapp.projects.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_it_creates_a_binary_project_with_default_classes(client, user):
    client.force_login(user)
    r = client.post("/projects/new/", {"name": "Mouse brain", "task": "binary", "classes": ""})
    assert r.status_code == 302
    p = Project.objects.get(name="Mouse brain")
    assert p.classes == ["off", "on"] and p.first_class == "off"
    assert p.memberships.get().role == "owner"
    page = client.get(r["Location"]).content.decode()
    assert "off-sample" in page and "on-sample" in page


def test_it_creates_multiclass_and_multilabel_projects(client, user):
    client.force_login(user)
    client.post("/projects/new/", {"name": "Yeast", "task": "multiclass", "classes": "ER, bud, nucleus"})
    client.post("/projects/new/", {"name": "HPA", "task": "multilabel", "classes": "nucleoplasm,cytosol"})
    assert Project.objects.get(name="Yeast").classes == ["ER", "bud", "nucleus"]
    assert Project.objects.get(name="HPA").task == "multilabel"


@pytest.mark.parametrize(
    "task,classes,words",
    [
        ("binary", "a,b,c", "exactly two"),
        ("multiclass", "", "List the class"),
        ("multiclass", "a,a", "different"),
        ("multilabel", "has space,x", "without spaces"),
    ],
)
def test_it_rejects_bad_class_lists(client, user, task, classes, words):
    client.force_login(user)
    r = client.post("/projects/new/", {"name": "P", "task": task, "classes": classes})
    assert r.status_code == 200
    assert words in r.content.decode()
    assert not Project.objects.exists()


def test_it_refuses_a_duplicate_project_name_per_owner(client, user):
    ProjectFactory(owner=user, name="Kidney")
    client.force_login(user)
    r = client.post("/projects/new/", {"name": "kidney", "task": "binary"})
    assert r.status_code == 200 and "already have a project" in r.content.decode()
    # Another owner may use the same name.
    other = UserFactory()
    client.force_login(other)
    assert client.post("/projects/new/", {"name": "Kidney", "task": "binary"}).status_code == 302


def test_it_shows_only_my_projects_and_404s_the_rest(client, user):
    mine = ProjectFactory(owner=user, name="Mine")
    theirs = ProjectFactory(name="Theirs")
    client.force_login(user)
    home = client.get("/").content.decode()
    assert "Mine" in home and "Theirs" not in home
    assert client.get(mine.get_absolute_url()).status_code == 200
    assert client.get(theirs.get_absolute_url()).status_code == 404
    assert client.get(f"/projects/{theirs.slug}/members/").status_code == 404
    assert client.get("/p/no-such-project/").status_code == 404


def test_it_invites_by_username_or_email_and_changes_roles(client, user, project):
    bob, carol = UserFactory(), UserFactory()
    client.force_login(user)
    client.post(f"/projects/{project.slug}/members/", {"user": bob.username, "role": "viewer"})
    client.post(f"/projects/{project.slug}/members/", {"user": carol.email, "role": "annotator"})
    assert project.memberships.get(user=bob).role == "viewer"
    assert project.memberships.get(user=carol).role == "annotator"
    m = project.memberships.get(user=bob)
    client.post(f"/projects/{project.slug}/members/{m.id}/", {"role": "annotator"})
    assert project.memberships.get(user=bob).role == "annotator"
    client.post(f"/projects/{project.slug}/members/{m.id}/", {"action": "remove"})
    assert not project.memberships.filter(user=bob).exists()


def test_it_explains_an_unknown_invitee(client, user, project):
    client.force_login(user)
    r = client.post(f"/projects/{project.slug}/members/", {"user": "nobody@nowhere.org", "role": "viewer"})
    assert r.status_code == 200 and "No user with the username or e-mail" in r.content.decode()


def test_it_keeps_at_least_one_owner(client, user, project):
    client.force_login(user)
    m = project.memberships.get(user=user)
    r = client.post(f"/projects/{project.slug}/members/{m.id}/", {"action": "remove"}, follow=True)
    assert "at least one owner" in r.content.decode()
    assert project.memberships.filter(user=user, role="owner").exists()


def test_it_forbids_viewers_and_annotators_to_manage(client, project):
    viewer, annotator = UserFactory(), UserFactory()
    add_member(project, viewer, "viewer")
    add_member(project, annotator, "annotator")
    for u in (viewer, annotator):
        client.force_login(u)
        assert client.get(project.get_absolute_url()).status_code == 200
        r = client.post(f"/projects/{project.slug}/members/", {"user": u.username, "role": "owner"})
        assert r.status_code == 403
        assert client.post(f"/projects/{project.slug}/delete/", {"confirm": project.slug}).status_code == 403
    assert project.memberships.get(user=viewer).role == "viewer"
    assert Project.objects.filter(pk=project.pk).exists()


def test_it_deletes_a_project_after_confirmation(client, user, project):
    client.force_login(user)
    client.post(f"/projects/{project.slug}/delete/", {"confirm": "wrong"})
    assert Project.objects.filter(pk=project.pk).exists()
    client.post(f"/projects/{project.slug}/delete/", {"confirm": project.slug})
    assert not Project.objects.filter(pk=project.pk).exists()


def test_it_creates_projects_and_members_from_the_command_line(user, capsys):
    call_command(
        "create_project", "bladder", "--owner", user.username, "--task", "multiclass", "--classes", "a,b,c"
    )
    p = Project.objects.get(slug="bladder")
    assert p.classes == ["a", "b", "c"] and p.task == "multiclass"
    bob = UserFactory()
    call_command("add_member", "bladder", bob.username, "--role", "viewer")
    assert Membership.objects.get(project=p, user=bob).role == "viewer"
    with pytest.raises(CommandError, match="taken"):
        call_command("create_project", "bladder", "--owner", user.username, "--name", "Another")
    with pytest.raises(CommandError, match="No user"):
        call_command("add_member", "bladder", "ghost", "--role", "viewer")
    with pytest.raises(CommandError, match="No user named"):
        call_command("create_project", "x", "--owner", "ghost")


def test_it_checks_access_in_one_query_without_sorting_joins(user):
    """Every request's permission check is one query; the membership subquery reads the
    membership table alone (its default ordering used to join the project and user tables)."""
    project = ProjectFactory(owner=user)
    ds = make_ready_dataset(project, n=3, user=user, thumbnails=False)
    image = ds.images.first()
    checks = {
        "project_for": (lambda: project_for(user, project.slug), 0),
        "dataset_for": (lambda: dataset_for(user, ds.pk), 1),  # + project
        "image_for": (lambda: image_for(user, image.pk), 3),  # + dataset, project, model version
        "membership_for": (lambda: membership_for(user, project), 0),
    }
    for name, (check, joins) in checks.items():
        with CaptureQueriesContext(connection) as ctx:
            assert check() is not None
        [query] = ctx.captured_queries
        sql = query["sql"]
        assert sql.count("JOIN") == joins, (name, sql)
        assert "auth_user" not in sql, (name, sql)
