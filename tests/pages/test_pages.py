from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from webapp.datasets.labels import set_labels

pytestmark = pytest.mark.django_db

ROLES = ["owner", "annotator", "viewer"]


def urls(project, dataset):
    image = dataset.images.order_by("index").first()
    return [
        f"/p/{project.slug}/",
        f"/p/{project.slug}/gallery/",
        f"/p/{project.slug}/review/",
        f"/datasets/{dataset.pk}/",
        f"/datasets/{dataset.pk}/gallery/",
        f"/images/{image.pk}/",
    ]


def figure(client, html: str, name: str) -> dict:
    """The figure the page's <div id=name data-figure-url=...> fetches after loading."""
    m = re.search(rf'<div id="{name}" [^>]*data-figure-url="([^"]+)"', html)
    assert m, f"no figure {name}"
    r = client.get(m.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    return r.json()


@pytest.mark.parametrize("role", ROLES)
def test_it_renders_every_page_for_members(client, project, dataset, people, role):
    client.force_login(people[role])
    for url in urls(project, dataset):
        r = client.get(url)
        assert r.status_code == 200, url


def test_it_hides_pages_from_non_members_and_redirects_anonymous(client, project, dataset, people):
    for url in urls(project, dataset):
        assert client.get(url).status_code == 302 and "/accounts/login/" in client.get(url)["Location"]
    client.force_login(people["outsider"])
    for url in urls(project, dataset):
        assert client.get(url).status_code == 404, url


def test_it_shows_upload_and_train_only_to_annotators(client, project, dataset, people):
    for role, visible in [("owner", True), ("annotator", True), ("viewer", False)]:
        client.force_login(people[role])
        page = client.get(f"/p/{project.slug}/").content.decode()
        assert ('id="upload-card"' in page) is visible
        assert ('id="train-card"' in page) is visible
        gallery = client.get(f"/datasets/{dataset.pk}/gallery/").content.decode()
        assert ('id="read-only"' in gallery) is not visible
        image = client.get(f"/images/{dataset.images.first().pk}/").content.decode()
        assert ('id="label-buttons"' in image) is visible


def test_it_explains_the_cold_start_score(client, project, dataset, user):
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "Scores come from the unsupervised default" in page
    assert dataset.name in page


def test_it_shows_a_failed_dataset_reason(client, project, user):
    from webapp.datasets.models import Dataset

    Dataset.objects.create(project=project, name="broken", status="failed", error="the .ibd file is missing")
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "the .ibd file is missing" in page


def test_it_draws_the_tic_and_spectrum_on_the_dataset_page(client, project, dataset, user):
    client.force_login(user)
    html = client.get(f"/datasets/{dataset.pk}/").content.decode()
    tic = figure(client, html, "fig-tic")
    expected = np.load(dataset.tic_path)
    z = tic["data"][0]["z"]
    assert z[0][0] is None  # not acquired: transparent
    assert z[1][2] == pytest.approx(float(expected[1, 2]), rel=1e-5)
    spec = figure(client, html, "fig-spectrum")
    assert len(spec["data"][0]["x"]) <= 5000
    assert "Test instrument" in html and "16 × 20" in html


def test_it_draws_the_image_with_raw_hover_values_and_the_marked_mz(client, project, dataset, user):
    image = dataset.images.get(index=3)
    client.force_login(user)
    html = client.get(f"/images/{image.pk}/").content.decode()
    # The page draws the image itself from every raw value (base64 float32; it was a Plotly
    # heatmap of pre-scaled values before), and hovering shows the raw values.
    pixels = figure(client, html, "fig-image")
    raw = np.load(dataset.array_path)[3]
    values = np.frombuffer(base64.b64decode(pixels["channels"][0]["values"]), dtype="<f4").reshape(
        pixels["shape"]
    )
    np.testing.assert_array_equal(values, raw)
    # The dataset's spectrum (one cached figure for all its images), marked in the browser.
    spec = figure(client, html, "fig-spectrum")
    assert len(spec["data"][0]["x"]) <= 5000
    assert re.search(
        rf'<div id="fig-spectrum" [^>]*data-figure-url="/datasets/{dataset.pk}/figures/spectrum.json', html
    )
    assert float(re.search(r'data-marker-mz="([^"]+)"', html).group(1)) == image.mz
    hist = figure(client, html, "fig-history")
    assert hist["data"][0]["y"] == [pytest.approx(image.probability)]


def test_it_shows_labels_by_each_user_on_the_image_page(client, project, dataset, people):
    image = dataset.images.first()
    set_labels(project, [image], people["annotator"], "off")
    client.force_login(people["viewer"])
    html = client.get(f"/images/{image.pk}/").content.decode()
    assert people["annotator"].username in html and "off" in html


def test_it_links_the_gallery_to_the_right_api(client, project, dataset, user):
    client.force_login(user)
    html = client.get(f"/datasets/{dataset.pk}/gallery/").content.decode()
    cfg = json.loads(
        re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert cfg["imagesUrl"] == f"/api/datasets/{dataset.pk}/images/"
    assert [c["name"] for c in cfg["classes"]] == ["off", "on"] and cfg["canLabel"] is True
    r = client.get(cfg["imagesUrl"] + "?ordering=-probability")
    probs = [i["probability"] for i in r.json()["results"]]
    assert probs == sorted(probs, reverse=True)
