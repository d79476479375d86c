from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from classifier.scoring import store_predictions
from tests.datasets.helpers import synthetic, write_mz_list
from tests.factories import UserFactory, add_member
from webapp.datasets.models import Dataset, Label

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(project, tmp_path, capsys):
    truth = synthetic(tmp_path, seed=21, n_on=6, n_off=6)
    mz_list = write_mz_list(tmp_path / "l.csv", [m for m, _ in truth.ions])
    call_command("import_imzml", truth.imzml_path, "--project", project.slug, "--mz-list", str(mz_list))
    ds = Dataset.objects.get(pk=int(capsys.readouterr().out.split()[-1]))
    images = list(ds.images.order_by("index"))
    rng = np.random.default_rng(0)
    p_off = rng.uniform(0, 1, len(images))
    store_predictions(project, images, np.stack([p_off, 1 - p_off], axis=1), np.array([0.5, 0.5]), None)
    ds.p_off = p_off
    return ds


def test_it_orders_by_probability_uncertainty_and_mz(api, user, dataset):
    api.force_authenticate(user)
    url = f"/api/datasets/{dataset.pk}/images/"
    items = api.get(url, {"ordering": "-probability"}).json()["results"]
    probs = [i["probability"] for i in items]
    assert probs == sorted(probs, reverse=True)
    assert probs == pytest.approx(sorted(dataset.p_off, reverse=True), abs=1e-6)
    first = items[0]
    assert set(first) >= {
        "id",
        "mz",
        "name",
        "probability",
        "probabilities",
        "label",
        "my_label",
        "thumbnail_url",
    }
    assert first["probabilities"]["off"] == pytest.approx(first["probability"])
    asc = [i["probability"] for i in api.get(url, {"ordering": "probability"}).json()["results"]]
    assert asc == sorted(asc)
    unc = [abs(i["probability"] - 0.5) for i in api.get(url, {"ordering": "uncertainty"}).json()["results"]]
    assert unc == sorted(unc)
    mzs = [i["mz"] for i in api.get(url, {"ordering": "mz"}).json()["results"]]
    assert mzs == sorted(mzs)


def test_it_filters_and_counts(api, user, dataset):
    api.force_authenticate(user)
    url = f"/api/datasets/{dataset.pk}/images/"
    images = list(dataset.images.order_by("index"))
    for im in images[:3]:
        api.put(f"/api/images/{im.pk}/label/", {"label": "off"}, format="json")
    r = api.get(url, {"prob_min": 0.5}).json()
    assert r["count"] == int((dataset.p_off >= 0.5).sum())
    assert api.get(url, {"labelled": "true"}).json()["count"] == 3
    assert api.get(url, {"labelled": "false"}).json()["count"] == len(images) - 3
    disagree = sum(1 for im in images[:3] if im.predicted != "off")
    assert api.get(url, {"disagreement": "true"}).json()["count"] == disagree
    assert api.get(url, {"labelled_by": "me"}).json()["count"] == 3
    assert api.get(url, {"labelled_by": "others"}).json()["count"] == 0
    assert api.get(url, {"search": images[4].name}).json()["count"] >= 1
    counts = api.get(f"{url}counts/").json()
    assert counts["total"] == len(images) and counts["labelled"] == 3 and counts["disagreement"] == disagree
    assert counts["predicted"]["off"] == int((dataset.p_off >= 0.5).sum())
    assert counts["label"] == {"off": 3, "on": 0}


def test_it_sets_and_removes_my_label(api, user, dataset):
    api.force_authenticate(user)
    im = dataset.images.first()
    r = api.put(f"/api/images/{im.pk}/label/", {"label": "on"}, format="json")
    assert r.status_code == 200 and r.json()["my_label"] == "on" and r.json()["label"] == "on"
    r = api.put(f"/api/images/{im.pk}/label/", {"label": "sideways"}, format="json")
    assert r.status_code == 400 and "Unknown class" in r.json()["label"][0]
    assert Label.objects.get(image=im).value == "on"
    r = api.delete(f"/api/images/{im.pk}/label/")
    assert r.status_code == 200 and r.json()["my_label"] is None
    assert not Label.objects.exists()


def test_it_labels_many_at_once(api, user, dataset, project):
    api.force_authenticate(user)
    ids = list(dataset.images.values_list("pk", flat=True)[:5])
    r = api.post(f"/api/projects/{project.slug}/labels/", {"images": ids, "label": "off"}, format="json")
    assert r.status_code == 200 and r.json()["labelled"] == 5
    assert Label.objects.filter(user=user, value="off").count() == 5


def test_it_lets_viewers_read_but_not_label_and_hides_from_strangers(api, dataset, project):
    viewer, stranger = UserFactory(), UserFactory()
    add_member(project, viewer, "viewer")
    im = dataset.images.first()
    api.force_authenticate(viewer)
    assert api.get(f"/api/datasets/{dataset.pk}/images/").status_code == 200
    assert api.put(f"/api/images/{im.pk}/label/", {"label": "on"}, format="json").status_code == 403
    assert (
        api.post(
            f"/api/projects/{project.slug}/labels/", {"images": [im.pk], "label": "on"}, format="json"
        ).status_code
        == 403
    )
    assert api.delete(f"/api/datasets/{dataset.pk}/").status_code == 403
    api.force_authenticate(stranger)
    for url in (
        f"/api/datasets/{dataset.pk}/",
        f"/api/datasets/{dataset.pk}/images/",
        f"/api/images/{im.pk}/",
        f"/api/images/{im.pk}/thumbnail/",
    ):
        assert api.get(url).status_code == 404, url
    assert api.put(f"/api/images/{im.pk}/label/", {"label": "on"}, format="json").status_code == 404
    assert not Label.objects.exists()


def test_it_serves_thumbnails_with_cache_headers(client, user, dataset):
    client.force_login(user)
    im = dataset.images.first()
    r = client.get(f"/api/images/{im.pk}/thumbnail/?r=1")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    assert "max-age=31536000" in r["Cache-Control"]
    again = client.get(f"/api/images/{im.pk}/thumbnail/?r=1", HTTP_IF_NONE_MATCH=r["ETag"])
    assert again.status_code == 304
    client.logout()
    assert client.get(f"/api/images/{im.pk}/thumbnail/").status_code in (401, 403)


def test_it_uploads_through_the_api_and_processes(
    api, user, project, tmp_path, django_capture_on_commit_callbacks
):
    truth = synthetic(tmp_path, seed=31)
    api.force_authenticate(user)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(
            f"/api/projects/{project.slug}/datasets/",
            {
                "imzml": SimpleUploadedFile("s.imzML", Path(truth.imzml_path).read_bytes()),
                "ibd": SimpleUploadedFile("s.ibd", Path(truth.ibd_path).read_bytes()),
                "top": 10,
                "name": "Slide 1",
            },
            format="multipart",
        )
    assert r.status_code == 202, r.content
    ds = Dataset.objects.get(pk=r.json()["id"])
    assert ds.status == "ready" and 1 <= ds.image_count <= 10 and ds.name == "Slide 1"
    job = project.jobs.get(kind="ingest")
    assert job.status == "done" and job.progress == 1.0


def test_it_reports_a_bad_upload_clearly(api, user, project, tmp_path, django_capture_on_commit_callbacks):
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{project.slug}/datasets/",
        {"imzml": SimpleUploadedFile("s.imzML", b"<x/>")},
        format="multipart",
    )
    assert r.status_code == 400 and ".ibd file is missing" in r.json()["detail"]
    a, b = synthetic(tmp_path, "a", seed=1), synthetic(tmp_path, "b", seed=2)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(
            f"/api/projects/{project.slug}/datasets/",
            {
                "imzml": SimpleUploadedFile("a.imzML", Path(a.imzml_path).read_bytes()),
                "ibd": SimpleUploadedFile("b.ibd", Path(b.ibd_path).read_bytes()),
            },
            format="multipart",
        )
    ds = Dataset.objects.get(pk=r.json()["id"])
    assert ds.status == "failed" and "UUIDs differ" in ds.error
    assert project.jobs.get(kind="ingest").status == "failed"


def test_it_refuses_a_dataset_filter_past_64_bits_with_400(api, user, project):
    from tests.gallery_data import make_ready_dataset

    make_ready_dataset(project, n=3, thumbnails=False)
    api.force_authenticate(user)
    for q in ("dataset=99999999999999999999", "dataset=1.5", "dataset=-1"):
        assert api.get(f"/api/projects/{project.slug}/images/?{q}").status_code == 400, q
