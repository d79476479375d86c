"""Select-all ids, bulk add/remove of one class in multi-label projects, per-project keys."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets import labels
from webapp.datasets.models import Label
from webapp.projects.models import DEFAULT_KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def atlas(user):
    project = ProjectFactory(owner=user, task="multilabel", classes="nucleus,cytosol,er")
    return make_ready_dataset(project, n=8, thumbnails=False, probs=np.full((8, 3), 0.5))


def test_it_lists_the_ids_of_every_image_matching_the_filters(user, api):
    ds = make_ready_dataset(ProjectFactory(owner=user), n=30, thumbnails=False, probs=np.linspace(0, 1, 30))
    api.force_authenticate(user)
    r = api.get(f"/api/datasets/{ds.pk}/images/ids/?prob_min=0.5&ordering=-probability")
    assert r.status_code == 200
    body = r.json()
    expected = list(
        ds.images.filter(probability__gte=0.5).order_by("-probability", "index").values_list("pk", flat=True)
    )
    assert body == {"ids": expected, "count": 15, "truncated": False}
    assert api.get(f"/api/projects/{ds.project.slug}/images/ids/").json()["count"] == 30
    api.force_authenticate(UserFactory())
    assert api.get(f"/api/datasets/{ds.pk}/images/ids/").status_code == 404


def test_it_adds_and_removes_one_class_keeping_the_others(atlas, user, api):
    ims = list(atlas.images.order_by("index"))
    labels.set_labels(atlas.project, ims[:4], user, ["nucleus", "er"])
    api.force_authenticate(user)
    url = f"/api/projects/{atlas.project.slug}/labels/"
    r = api.post(url, {"images": [im.pk for im in ims], "label": "cytosol", "mode": "add"}, format="json")
    assert r.status_code == 200 and r.json()["changed"] == 8
    values = dict(Label.objects.values_list("image_id", "value"))
    assert [values[im.pk] for im in ims] == ["nucleus cytosol er"] * 4 + ["cytosol"] * 4
    r = api.post(
        url, {"images": [im.pk for im in ims], "label": ["nucleus"], "mode": "remove"}, format="json"
    )
    assert r.json()["changed"] == 4
    values = dict(Label.objects.values_list("image_id", "value"))
    assert [values[im.pk] for im in ims] == ["cytosol er"] * 4 + ["cytosol"] * 4
    # Removing the last class removes the label.
    api.post(url, {"images": [ims[7].pk], "label": "cytosol", "mode": "remove"}, format="json")
    assert not Label.objects.filter(image=ims[7]).exists()
    # The bulk add is one undo step.
    api.post(url, {"images": [im.pk for im in ims[4:6]], "label": "er", "mode": "add"}, format="json")
    assert Label.objects.get(image=ims[4]).value == "cytosol er"
    assert api.post(f"/api/projects/{atlas.project.slug}/labels/undo/").json()["changed"] == 2
    assert Label.objects.get(image=ims[4]).value == "cytosol"


def test_it_refuses_add_mode_outside_multilabel_projects(user, api):
    ds = make_ready_dataset(ProjectFactory(owner=user), n=3, thumbnails=False)
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{ds.project.slug}/labels/",
        {"images": [ds.images.first().pk], "label": "off", "mode": "add"},
        format="json",
    )
    assert r.status_code == 400 and "multi-label" in r.json()["mode"][0]


def test_it_gives_every_class_of_a_large_project_a_default_key(user):
    classes = ",".join(f"c{i}" for i in range(28))
    project = ProjectFactory(owner=user, task="multilabel", classes=classes)
    keys = project.class_keys
    assert len(set(keys)) == 28 and keys[:10] == list("1234567890")
    assert not set(keys) & set("jkxu")
    assert len(DEFAULT_KEYS) >= 28


def test_it_lets_owners_choose_keys_and_refuses_clashes(user, client):
    project = ProjectFactory(owner=user)
    client.force_login(user)
    url = f"/projects/{project.slug}/keys/"
    assert client.get(url).status_code == 200
    r = client.post(url, {"key_0": "o", "key_1": "o"})
    assert r.status_code == 200 and "used twice" in r.content.decode()
    r = client.post(url, {"key_0": "x", "key_1": "n"})
    assert "other than" in r.content.decode()
    r = client.post(url, {"key_0": "O", "key_1": "n"})
    assert r.status_code == 302
    project.refresh_from_db()
    assert project.class_keys == ["o", "n"]
    gallery = client.get(f"/p/{project.slug}/gallery/").content.decode()
    assert "<kbd>o</kbd>" in gallery


def test_it_shows_keys_read_only_to_annotators(user, client):
    project = ProjectFactory(owner=user)
    annotator = UserFactory()
    add_member(project, annotator, "annotator")
    client.force_login(annotator)
    url = f"/projects/{project.slug}/keys/"
    assert "Only owners" in client.get(url).content.decode()
    assert client.post(url, {"key_0": "a", "key_1": "b"}).status_code == 403
