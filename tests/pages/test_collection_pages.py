from __future__ import annotations

import pytest
from django.test import Client

from tests.collections.test_collections import labelled_dataset  # noqa: F401 - fixture
from tests.factories import ProjectFactory, UserFactory
from webapp.collections.models import Collection

pytestmark = pytest.mark.django_db


def test_it_creates_shares_and_uses_a_collection_through_pages(client, user, project, labelled_dataset):  # noqa: F811
    client.force_login(user)
    r = client.post(f"/p/{project.slug}/collections/new/", {"name": "Gold", "description": "expert labels"})
    assert r.status_code == 302
    coll = Collection.objects.get(name="Gold")
    assert coll.latest.item_count == 6
    page = client.get(f"/collections/{coll.pk}/").content.decode()
    assert "v1" in page and "Sharing" in page
    bob = UserFactory()
    client.post(f"/collections/{coll.pk}/share/", {"users": bob.username})
    assert list(coll.shared_with.all()) == [bob]
    client.force_login(bob)
    assert "Gold" in client.get("/collections/").content.decode()
    assert "Sharing" not in client.get(f"/collections/{coll.pk}/").content.decode()  # read-only for bob
    assert client.post(f"/collections/{coll.pk}/share/", {"users": "x"}).status_code == 403
    theirs = ProjectFactory(owner=bob)
    r = client.post(f"/p/{theirs.slug}/training-collections/", {"collection": coll.pk})
    assert r.status_code == 302 and theirs.training_collections.count() == 1
    client.force_login(user)
    client.post(f"/collections/{coll.pk}/revoke/", {"user": bob.username})
    client.force_login(bob)
    assert client.get(f"/collections/{coll.pk}/").status_code == 404


def test_it_hides_collections_from_strangers(client, user, project, labelled_dataset):  # noqa: F811
    client.force_login(user)
    client.post(f"/p/{project.slug}/collections/new/", {"name": "Private"})
    coll = Collection.objects.get(name="Private")
    client = Client()  # a new browser: no flash message from the owner's session
    client.force_login(UserFactory())
    assert client.get(f"/collections/{coll.pk}/").status_code == 404
    assert "Private" not in client.get("/collections/").content.decode()
    assert client.get(f"/p/{project.slug}/collections/new/").status_code == 404
