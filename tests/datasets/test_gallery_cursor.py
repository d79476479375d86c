"""Keyset pages (issue 13): every gallery's `next` link continues after the last image's sort
values, so a deep page costs what the first one does. Following the links must list every
image once, in the gallery's order, whatever the ties (the same index, score or name in several
datasets) and missing values (unscored images, images without m/z)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.gallery_data import make_ready_dataset
from webapp.datasets import gallery
from webapp.datasets.api.pagination import encode_cursor
from webapp.datasets.models import Dataset, IonImage

pytestmark = pytest.mark.django_db


def tied_project(project, user) -> list[Dataset]:
    """Three datasets of 90 images: indexes, m/z and names repeat across them; a third of the
    scores are missing and some repeat exactly; some m/z are missing."""
    datasets = [
        make_ready_dataset(project, n=90, user=user, thumbnails=False, seed=s, name=f"D{s}") for s in range(3)
    ]
    IonImage.objects.filter(project=project, index__lt=30).update(probability=None, uncertainty=None)
    IonImage.objects.filter(project=project, index__gte=80).update(probability=0.5, uncertainty=0.25)
    IonImage.objects.filter(project=project, index__in=[5, 50, 85]).update(mz=None)
    return datasets


def follow(api, url: str) -> tuple[list[int], list[dict]]:
    """Every id the gallery lists from `url` on, following `next` links, and each answer."""
    ids, answers = [], []
    while url:
        r = api.get(url)
        assert r.status_code == 200, r.content
        answers.append(r.json())
        ids += [im["id"] for im in r.json()["results"]]
        url = r.json()["next"]
    return ids, answers


def test_it_follows_next_links_through_every_project_ordering_without_repeats_or_gaps(api, project, user):
    tied_project(project, user)
    api.force_authenticate(user)
    for ordering in gallery.ORDERINGS:
        expected = list(
            gallery.ordered(gallery.project_images(project), ordering, across_datasets=True).values_list(
                "pk", flat=True
            )
        )
        ids, answers = follow(api, f"/api/projects/{project.slug}/images/?ordering={ordering}")
        assert len(expected) == 270
        assert ids == expected, ordering
        assert len(answers) == 3 and all(a["count"] == 270 for a in answers)
        assert "cursor=" in answers[0]["next"] and "page=" not in answers[0]["next"]
        assert answers[1]["previous"] is None and answers[-1]["next"] is None


def test_it_follows_next_links_through_a_dataset_gallery_and_a_filtered_one(api, project, user):
    ds = tied_project(project, user)[1]
    api.force_authenticate(user)
    for ordering in gallery.ORDERINGS:
        expected = list(gallery.ordered(ds.images.all(), ordering).values_list("pk", flat=True))
        ids, _ = follow(api, f"/api/datasets/{ds.pk}/images/?ordering={ordering}")
        assert ids == expected, ordering
    # A filter keeps going through the links, with the filtered total.
    IonImage.objects.filter(dataset=ds, index__lt=60).update(label_count=1)
    url = f"/api/projects/{project.slug}/images/?ordering=mz&labelled=true"
    ids, answers = follow(api, url)
    assert ids == list(
        gallery.ordered(gallery.project_images(project).filter(label_count__gt=0), "mz", True).values_list(
            "pk", flat=True
        )
    )
    assert len(ids) == 60 and [a["count"] for a in answers] == [60]


def test_it_continues_from_page_numbers_and_keeps_counting_only_once(api, project, user):
    tied_project(project, user)
    api.force_authenticate(user)
    base = f"/api/projects/{project.slug}/images/?ordering=-probability&labelled=false"
    second = api.get(base + "&page=2").json()
    assert second["previous"] and "page" not in second["next"].split("?")[1].split("&")[0]
    cursor_url = second["next"]
    with CaptureQueriesContext(connection) as queries:
        third = api.get(cursor_url).json()
    assert [im["id"] for im in third["results"]] == follow(api, base)[0][200:270]
    assert third["count"] == 270
    # No COUNT(*) again: the total came with the cursor.
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_it_refuses_bad_page_links_with_a_message(api, project, user):
    tied_project(project, user)
    api.force_authenticate(user)
    url = f"/api/projects/{project.slug}/images/"
    good = api.get(url).json()["next"].split("cursor=")[1]
    keys = gallery.sort_keys("-probability", across_datasets=True)
    cases = {
        "cut short": good[: len(good) // 2],
        "not base64 json": "!!!",
        "another ordering": encode_cursor("mz", [1.0, 2, 3], 270),
        "a string for a score": encode_cursor("-probability", ["x", 2, 3], 270),
        "an id past 64 bits": encode_cursor("-probability", [0.5, 2, 2**70], 270),
        "a missing index": encode_cursor("-probability", [0.5, None, 3], 270),
        "too few values": encode_cursor("-probability", [0.5], 270),
    }
    assert len(keys) == 3
    for why, cursor in cases.items():
        r = api.get(url, {"cursor": cursor})
        assert r.status_code == 400, why
        assert "gallery" in r.json()["cursor"][0], why
    r = api.get(url, {"cursor": good, "page": 2})
    assert r.status_code == 400 and "not both" in r.json()["cursor"][0]


def test_it_splits_a_cursor_on_a_missing_value_into_index_friendly_ranges():
    keys = gallery.sort_keys("-probability", across_datasets=True)
    assert len(gallery.keyset_ranges(keys, [0.3, 4, 10])) == 2  # at or below 0.3, then the unscored
    assert len(gallery.keyset_ranges(keys, [None, 4, 10])) == 1  # among the unscored only
    assert len(gallery.keyset_ranges(gallery.sort_keys("name", True), ["C6H12O6", 4, 10])) == 1
    assert [k.field for k in gallery.sort_keys("index", across_datasets=True)] == ["dataset_id", "index"]
    assert [k.field for k in gallery.sort_keys("mz", across_datasets=False)] == ["mz", "index"]
