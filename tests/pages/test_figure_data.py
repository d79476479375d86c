"""Figures come from JSON endpoints, not from inside page requests; per-dataset ones are cached."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from webapp.pages import figure_data, figures

pytestmark = pytest.mark.django_db


def figure_urls(html: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2).replace("&amp;", "&")
        for m in re.finditer(r'<div id="fig-(\w+)" [^>]*data-figure-url="([^"]+)"', html)
    }


def test_it_builds_no_figure_inside_the_image_and_dataset_pages(client, user, dataset, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a figure was built inside a page request")

    for name in ("heatmap", "spectrum", "probability_history"):
        monkeypatch.setattr(figures, name, refuse)
    client.force_login(user)
    image = dataset.images.get(index=1)
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert set(figure_urls(page)) == {"image", "tic", "spectrum", "history"}
    assert 'application/json">{"data"' not in page  # no embedded figure
    assert set(figure_urls(client.get(f"/datasets/{dataset.pk}/").content.decode())) == {"tic", "spectrum"}


def test_it_builds_a_dataset_figure_once_per_revision(client, user, dataset, monkeypatch):
    cache.clear()
    built = []
    real = figure_data.build_dataset_figure
    monkeypatch.setattr(
        figure_data, "build_dataset_figure", lambda ds, name: built.append(name) or real(ds, name)
    )
    client.force_login(user)
    urls = figure_urls(client.get(f"/datasets/{dataset.pk}/").content.decode())
    first = client.get(urls["spectrum"])
    assert client.get(urls["spectrum"]).content == first.content
    for image in dataset.images.all()[
        :3
    ]:  # image pages share the dataset's figures (one browser cache entry)
        page_urls = figure_urls(client.get(f"/images/{image.pk}/").content.decode())
        assert page_urls["spectrum"] == urls["spectrum"] and page_urls["tic"] == urls["tic"]
        assert client.get(page_urls["spectrum"]).content == first.content
    assert built == ["spectrum"]
    dataset.revision += 1  # processed again: new files, new figures, new URLs
    dataset.save()
    dataset.spectrum_path.touch()
    again = figure_urls(client.get(f"/datasets/{dataset.pk}/").content.decode())["spectrum"]
    assert again != urls["spectrum"]
    client.get(again)
    assert built == ["spectrum", "spectrum"]


def test_it_lets_the_browser_keep_figures_of_a_revision(client, user, dataset):
    client.force_login(user)
    image = dataset.images.get(index=0)
    urls = figure_urls(client.get(f"/images/{image.pk}/").content.decode())
    for name in ("image", "tic", "spectrum"):
        r = client.get(urls[name])  # tic and spectrum: the dataset's URLs
        assert urls[name].endswith(f"?r={dataset.revision}")
        assert r["Cache-Control"] == "private, max-age=31536000, immutable", name
    assert client.get(urls["history"])["Cache-Control"] == "private, no-cache"  # new versions change it
    stale = urls["image"].replace(f"?r={dataset.revision}", f"?r={dataset.revision - 1}")
    assert client.get(stale)["Cache-Control"] == "private, no-cache"


def test_it_keeps_figures_from_non_members(client, user, dataset, people):
    image = dataset.images.get(index=0)
    urls = [f"/images/{image.pk}/figures/{n}.json" for n in ("image", "history")]
    urls += [f"/datasets/{dataset.pk}/figures/{n}.json" for n in ("tic", "spectrum")]
    for url in urls:
        assert client.get(url).status_code == 302, url  # anonymous: to the login page
    client.force_login(people["outsider"])
    for url in urls:
        assert client.get(url).status_code == 404, url
    client.force_login(people["viewer"])
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get(f"/datasets/{dataset.pk}/figures/secret.json").status_code == 404
    assert (
        client.get(f"/images/{image.pk}/figures/tic.json").status_code == 404
    )  # the dataset's URL serves it
