from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command

from tests.datasets.helpers import synthetic, write_mz_list
from tests.factories import ProjectFactory, UserFactory
from webapp.collections.models import Collection
from webapp.collections.training import sources_for
from webapp.datasets import labels
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled_dataset(project, user, tmp_path, capsys):
    truth = synthetic(tmp_path, seed=51)
    mz_list = write_mz_list(tmp_path / "l.csv", [m for m, _ in truth.ions])
    call_command("import_imzml", truth.imzml_path, "--project", project.slug, "--mz-list", str(mz_list))
    ds = Dataset.objects.get(pk=int(capsys.readouterr().out.split()[-1]))
    images = list(ds.images.order_by("index"))
    for im, (_mz, lab) in zip(images[:6], truth.ions[:6], strict=True):
        labels.set_labels(project, [im], user, lab)
    return ds


def test_it_snapshots_labelled_images_and_shares_them(api, user, project, labelled_dataset):
    bob, eve = UserFactory(), UserFactory()
    api.force_authenticate(user)
    r = api.post("/api/collections/", {"project": project.slug, "name": "Kidney gold"}, format="json")
    assert r.status_code == 201, r.content
    cid = r.json()["id"]
    v1 = r.json()["versions"][0]
    assert v1["number"] == 1 and v1["item_count"] == 6
    assert sum(v1["label_counts"].values()) == 6
    coll = Collection.objects.get(pk=cid)
    items = list(coll.latest.items.order_by("index"))
    assert all(it.labels_by == {user.username: it.label} for it in items)
    stack = np.load(coll.latest.array_path)
    expected = np.load(labelled_dataset.array_path)
    np.testing.assert_array_equal(stack[0], expected[0])

    api.force_authenticate(bob)
    assert api.get(f"/api/collections/{cid}/").status_code == 404
    api.force_authenticate(user)
    assert (
        api.post(f"/api/collections/{cid}/share/", {"users": [bob.email]}, format="json").status_code == 200
    )
    api.force_authenticate(bob)
    shared = api.get("/api/collections/", {"scope": "shared"}).json()
    assert [c["id"] for c in shared] == [cid]
    assert (
        api.post(f"/api/collections/{cid}/share/", {"users": [eve.username]}, format="json").status_code
        == 403
    )
    api.force_authenticate(eve)
    assert api.get("/api/collections/").json() == []
    api.force_authenticate(user)
    api.post(f"/api/collections/{cid}/share/", {"public": True}, format="json")
    api.force_authenticate(eve)
    assert [c["id"] for c in api.get("/api/collections/", {"scope": "public"}).json()] == [cid]


def test_it_uses_a_shared_collection_for_training_until_revoked(api, user, project, labelled_dataset):
    bob = UserFactory()
    other = ProjectFactory(owner=bob)
    api.force_authenticate(user)
    cid = api.post("/api/collections/", {"project": project.slug, "name": "Gold"}, format="json").json()["id"]
    api.force_authenticate(bob)
    r = api.post(f"/api/projects/{other.slug}/training-collections/", {"collection": cid}, format="json")
    assert r.status_code == 404  # not shared yet
    api.force_authenticate(user)
    api.post(f"/api/collections/{cid}/share/", {"users": [bob.username]}, format="json")
    api.force_authenticate(bob)
    r = api.post(f"/api/projects/{other.slug}/training-collections/", {"collection": cid}, format="json")
    assert r.status_code == 201, r.content
    [source] = sources_for(other)
    arrays, contexts, labs, groups, info = source.load(context=True)
    assert len(arrays) == 6 and len(contexts) == 6 and info["version"] == 1
    assert set(labs) <= {"off", "on"} and all(g.startswith(f"c{cid}:") for g in groups)
    api.force_authenticate(user)
    api.delete(f"/api/collections/{cid}/share/?user={bob.username}")
    assert sources_for(other) == []  # revoking takes effect at once


def test_it_never_changes_a_version_and_makes_new_ones(api, user, project, labelled_dataset):
    api.force_authenticate(user)
    cid = api.post("/api/collections/", {"project": project.slug, "name": "G"}, format="json").json()["id"]
    im = labelled_dataset.images.order_by("index")[7]
    labels.set_labels(project, [im], user, "off")
    r = api.post(
        f"/api/collections/{cid}/versions/", {"project": project.slug, "note": "more"}, format="json"
    )
    assert r.status_code == 201 and r.json()["number"] == 2 and r.json()["item_count"] == 7
    coll = Collection.objects.get(pk=cid)
    assert coll.versions.get(number=1).items.count() == 6


def test_it_refuses_mismatched_classes_and_empty_selections(api, user, project, labelled_dataset):
    api.force_authenticate(user)
    r = api.post(
        "/api/collections/",
        {"project": project.slug, "name": "E", "filters": {"labelled": "false"}},
        format="json",
    )
    assert r.status_code == 400 and "label some images" in r.json()["detail"]
    cid = api.post("/api/collections/", {"project": project.slug, "name": "G"}, format="json").json()["id"]
    multi = ProjectFactory(owner=user, task="multiclass", classes="a,b,c")
    r = api.post(f"/api/projects/{multi.slug}/training-collections/", {"collection": cid}, format="json")
    assert r.status_code == 400 and "do not match" in r.json()["detail"]


def test_it_downloads_project_and_collection_zips(api, user, project, labelled_dataset):
    import io
    import zipfile

    api.force_authenticate(user)
    r = api.get(f"/api/projects/{project.slug}/export/", {"labelled": "true"})
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))).namelist()
    assert sum(n.endswith(".png") for n in names) == 6 and "GS.csv" in names
    cid = api.post("/api/collections/", {"project": project.slug, "name": "G"}, format="json").json()["id"]
    r = api.get(f"/api/collections/{cid}/export/")
    assert r.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))).namelist()
    assert "labelled_by.csv" in names and sum(n.endswith(".png") for n in names) == 6
    api.force_authenticate(UserFactory())
    assert api.get(f"/api/collections/{cid}/export/").status_code == 404
    assert api.get(f"/api/projects/{project.slug}/export/").status_code == 404
