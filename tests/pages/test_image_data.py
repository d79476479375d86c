from __future__ import annotations

import base64

import numpy as np
import pytest

from classifier.models import ModelVersion
from ionsieve_core.imaging.scaling import hotspot_threshold
from tests.gallery_data import make_ready_dataset, set_probabilities
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


def test_it_serves_image_values_tic_and_history(client, project, user, people):
    ds = make_ready_dataset(project, n=5, shape=(300, 40), thumbnails=False)
    image = ds.images.get(index=2)
    v1 = ModelVersion.objects.create(
        project=project, number=1, arch="compact", task="binary", classes=project.classes
    )
    set_probabilities(project, ds, np.full(5, 0.25), version=v1)
    client.force_login(people["viewer"])
    body = client.get(f"/api/images/{image.pk}/data/").json()
    # Native resolution now (the image was block-averaged to 256 px before): every pixel.
    assert body["shape"] == [300, 40] and body["downsample"] == 1
    raw = np.load(ds.array_path)[2]
    np.testing.assert_array_equal(decode(body["channels"][0]["values"], (300, 40)), raw)
    assert len(body["tic"]) == 150  # the TIC is a small side figure: still block-averaged
    assert [h["name"] for h in body["history"]] == ["default", "v1"]
    assert body["history"][1]["probabilities"]["off"] == 0.25
    r = client.get(f"/api/datasets/{ds.pk}/spectrum/").json()
    assert len(r["mz"]) == len(r["intensity"]) <= 5000


def test_it_protects_image_data(client, project, dataset, people):
    image = dataset.images.first()
    assert client.get(f"/api/images/{image.pk}/data/").status_code in (401, 403)
    client.force_login(people["outsider"])
    assert client.get(f"/api/images/{image.pk}/data/").status_code == 404
    assert client.get(f"/api/datasets/{dataset.pk}/spectrum/").status_code == 404


def decode(b64: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(shape)


def test_it_returns_every_pixel_of_a_600_by_500_image(client, project, people):
    ds = make_ready_dataset(project, n=2, shape=(600, 500), thumbnails=False)
    image = ds.images.get(index=1)
    client.force_login(people["viewer"])
    body = client.get(f"/api/images/{image.pk}/data/").json()
    assert body["shape"] == [600, 500] and body["downsample"] == 1 and body["dtype"] == "float32"
    (channel,) = body["channels"]
    raw = np.load(ds.array_path)[1]
    values = decode(channel["values"], (600, 500))
    np.testing.assert_array_equal(values, raw)  # NaN where not acquired, bit for bit elsewhere
    assert np.isnan(values[0, 0]) and not np.isnan(values[599, 499])
    finite = raw[np.isfinite(raw)].astype(np.float64)
    assert channel["min"] == finite.min() and channel["max"] == finite.max()
    assert channel["hotspot"] == pytest.approx(hotspot_threshold(raw))
    assert len(channel["quantiles"]) == 1001
    assert channel["quantiles"][500] == pytest.approx(np.median(finite))


def test_it_sends_each_channel_of_a_microscopy_image(client, project, people):
    ds = make_ready_dataset(project, n=3, shape=(12, 10), thumbnails=False)
    stack = np.random.default_rng(1).random((3, 12, 10, 2), dtype=np.float32)
    np.save(ds.array_path, stack)  # pictures are stored (h, w, channels)
    Dataset.objects.filter(pk=ds.pk).update(channels=2)
    project.channels = ["green", "blue"]
    project.save()
    client.force_login(people["viewer"])
    body = client.get(f"/api/images/{ds.images.get(index=2).pk}/data/").json()
    assert [(c["name"], c["colour"]) for c in body["channels"]] == [("green", "#00ff00"), ("blue", "#0000ff")]
    for i, c in enumerate(body["channels"]):
        np.testing.assert_array_equal(decode(c["values"], (12, 10)), stack[2, :, :, i])
