"""Thumbnails: signed URLs served without a database query, and front-server hand-off."""

from __future__ import annotations

import time

import pytest

from tests.gallery_data import make_ready_dataset
from webapp.datasets import media

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(project, user):
    return make_ready_dataset(project, n=5, user=user)


def gallery_urls(client, dataset) -> dict[int, str]:
    items = client.get(f"/api/datasets/{dataset.pk}/images/?ordering=index").json()["results"]
    return {i["index"]: i["thumbnail_url"] for i in items}


def test_it_serves_signed_thumbnails_with_no_database_query_and_long_caching(
    client, user, dataset, django_assert_num_queries
):
    client.force_login(user)
    url = gallery_urls(client, dataset)[2]
    assert url.startswith(f"/api/thumbs/{dataset.pk}/2/{dataset.revision}/")
    with django_assert_num_queries(0):  # not even the session is read
        assert client.get(url).status_code == 200
    client.logout()  # the URL is the credential
    with django_assert_num_queries(0):
        r = client.get(url)
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    assert b"".join(r.streaming_content) == dataset.thumb_path(2).read_bytes()
    cache = r["Cache-Control"]
    assert "private" in cache and "immutable" in cache
    assert 86400 <= int(cache.split("max-age=")[1].split(",")[0]) <= 2 * 86400
    assert client.get(url, HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304


def test_it_refuses_tampered_and_expired_thumbnail_urls(client, user, dataset):
    good = media.signed_thumbnail_url(dataset.pk, 1, dataset.revision)
    parts = good.split("/")  # /api/thumbs/<ds>/<index>/<rev>/<exp>/<sig>.png
    assert client.get(good).status_code == 200
    other_index = "/".join(parts[:4] + ["2"] + parts[5:])
    later = "/".join(parts[:6] + [str(int(parts[6]) + 86400)] + parts[7:])
    forged = "/".join(parts[:7] + ["0" * 32 + ".png"])
    for url in (other_index, later, forged):
        assert client.get(url).status_code == 404, url
    old = media.signed_thumbnail_url(dataset.pk, 1, dataset.revision, now=time.time() - 3 * 86400)
    assert client.get(old).status_code == 404
    assert (
        client.get(media.signed_thumbnail_url(dataset.pk, 99, dataset.revision)).status_code == 404
    )  # no file


def test_it_keeps_one_url_per_thumbnail_within_a_bucket_for_the_browser_cache(settings):
    settings.IONSIEVE_SIGNED_URL_SECONDS = 3600
    t0 = 1_800_000_000 - 1_800_000_000 % 3600
    assert media.signed_thumbnail_url(1, 2, 3, now=t0) == media.signed_thumbnail_url(1, 2, 3, now=t0 + 3599)
    assert media.signed_thumbnail_url(1, 2, 3, now=t0) != media.signed_thumbnail_url(1, 2, 3, now=t0 + 3600)
    assert media.signed_thumbnail_url(1, 2, 3, now=t0) != media.signed_thumbnail_url(1, 2, 4, now=t0)
    assert media.expiry(t0 + 10) - (t0 + 10) >= 3600  # never less than one bucket left


@pytest.mark.parametrize("mode, header", [("nginx", "X-Accel-Redirect"), ("sendfile", "X-Sendfile")])
def test_it_hands_thumbnails_to_the_front_server_after_the_check(
    client, user, dataset, settings, mode, header
):
    settings.IONSIEVE_MEDIA_ACCEL = mode
    client.force_login(user)
    im = dataset.images.get(index=3)
    checked = client.get(f"/api/images/{im.pk}/thumbnail/?r={dataset.revision}")
    signed = client.get(gallery_urls(client, dataset)[3])
    for r in (checked, signed):
        assert r.status_code == 200 and r["Content-Type"] == "image/png"
        assert r.content == b""  # the front server sends the bytes
        assert "immutable" in r["Cache-Control"]
    expected = (
        f"/protected-media/datasets/{dataset.pk}/thumbs/3.png"
        if mode == "nginx"
        else str(dataset.thumb_path(3).resolve())
    )
    assert checked[header] == signed[header] == expected
    client.logout()
    assert client.get(f"/api/images/{im.pk}/thumbnail/").status_code in (401, 403)  # still checked


def test_it_keeps_signed_thumbnails_of_other_datasets_out_of_reach(client, user, project, dataset):
    other = make_ready_dataset(project, n=5, user=user, name="other", seed=3)
    url = media.signed_thumbnail_url(dataset.pk, 1, dataset.revision)
    swapped = url.replace(f"/api/thumbs/{dataset.pk}/", f"/api/thumbs/{other.pk}/")
    assert client.get(swapped).status_code == 404
