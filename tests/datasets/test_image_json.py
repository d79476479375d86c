"""The gallery's image JSON, built directly for speed, equals what DRF's declared fields give."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework import serializers

from tests.factories import ProjectFactory
from tests.gallery_data import make_ready_dataset
from webapp.datasets import gallery
from webapp.datasets.api.serializers import ImageSerializer
from webapp.datasets.api.views import schema_context
from webapp.datasets.labels import set_labels
from webapp.datasets.models import IonImage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("task, classes", [("binary", "off,on"), ("multilabel", "a,b,c")])
def test_it_gives_the_declared_fields_json(user, task, classes):
    project = ProjectFactory(owner=user, task=task, classes=classes)
    k = len(project.classes)
    ds = make_ready_dataset(
        project, n=6, user=user, thumbnails=False, probs=np.full((6, k), 1 / k) if task != "binary" else None
    )
    first = ds.images.get(index=0)
    IonImage.objects.filter(pk=first.pk).update(
        probability=None, probabilities=None, uncertainty=None, mz=None
    )
    set_labels(
        project,
        list(ds.images.filter(index__in=[1, 2])),
        user,
        project.classes[:2] if task == "multilabel" else project.classes[0],
    )
    set_labels(project, list(ds.images.filter(index=3)), user, None, unsure=True)
    # The gallery's tiles (gallery.ListingRow: columns only) and model instances (one image's
    # answers) give the same JSON as DRF's declared fields on the model instance.
    rows = gallery.listing_rows(IonImage.objects.filter(dataset=ds).order_by("index"))
    objects = list(
        IonImage.objects.filter(dataset=ds).select_related("dataset", "prediction_version").order_by("index")
    )
    gallery.attach_my_labels(rows, user)
    gallery.attach_my_labels(objects, user)
    ser = ImageSerializer(context=schema_context(project))
    assert [r.pk for r in rows] == [im.pk for im in objects]
    for row, im in zip(rows, objects, strict=True):
        declared = serializers.ModelSerializer.to_representation(ser, im)
        for fast in (ser.to_representation(row), ser.to_representation(im)):
            assert fast == dict(declared), im.index
            assert list(fast) == list(declared)  # same key order too
    assert ser.to_representation(rows[0])["probability"] is None
    assert ser.to_representation(rows[1])["my_label"] in ("off", ["a", "b"])


@pytest.mark.parametrize("ordering", list(gallery.ORDERINGS))
def test_it_pages_through_the_gallery_in_the_same_order_as_one_sorted_query(api, user, ordering):
    project = ProjectFactory(owner=user)
    probs = np.round(np.random.default_rng(5).random(230), 1)  # many ties: the index breaks them
    ds = make_ready_dataset(project, n=230, user=user, thumbnails=False, probs=probs)
    IonImage.objects.filter(dataset=ds, index__in=[3, 50, 199]).update(probability=None, uncertainty=None)
    set_labels(project, list(ds.images.filter(index__lt=120)), user, "off")
    api.force_authenticate(user)
    for params, qs in [
        ({}, IonImage.objects.filter(dataset=ds)),
        ({"labelled": "true"}, IonImage.objects.filter(dataset=ds, label_count__gt=0)),
    ]:
        expected = list(gallery.ordered(qs, ordering).values_list("pk", flat=True))
        got, page = [], 1
        while True:
            r = api.get(
                f"/api/datasets/{ds.pk}/images/", {"ordering": ordering, "page": page, **params}
            ).json()
            got += [item["id"] for item in r["results"]]
            assert r["count"] == len(expected)
            if not r["next"]:
                break
            page += 1
        assert got == expected, (ordering, params)
