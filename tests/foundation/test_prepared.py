"""Prepared queries (webapp/prepared.py) give what their querysets give, compiled once."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets.access import _IMAGE, dataset_for, image_for
from webapp.datasets.models import IonImage
from webapp.prepared import PreparedQuery
from webapp.projects.access import first_with_role

pytestmark = pytest.mark.django_db


def fields(obj) -> dict:
    return {k: v for k, v in vars(obj).items() if k != "_state"}


def test_it_gives_the_rows_and_related_objects_the_queryset_gives(user):
    project = ProjectFactory(owner=user, task="multiclass", classes="a,b,c")
    viewer, stranger = UserFactory(), UserFactory()
    add_member(project, viewer, "viewer")
    ds = make_ready_dataset(project, n=3, user=user, thumbnails=False, probs=np.full((3, 3), 1 / 3))
    for who in (user, viewer, stranger):
        for image in ds.images.all():
            rows = IonImage.objects.select_related("dataset__project", "prediction_version").filter(
                pk=image.pk
            )
            expected = first_with_role(rows, who, "dataset__project_id")
            with CaptureQueriesContext(connection) as ctx:
                got = _IMAGE.first(who, image.pk)
                # The joined objects and the role came with the row: no query for them.
                related = (got.dataset.project.classes, got.dataset.name, got.prediction_version)
            assert len(ctx.captured_queries) == 1
            assert fields(got) == fields(expected)
            assert fields(got.dataset) == fields(expected.dataset)
            assert fields(got.dataset.project) == fields(expected.dataset.project)
            assert related[0] == ["a", "b", "c"] and isinstance(got.probabilities, list)  # JSON decoded
            assert got.viewer_role == {user: "owner", viewer: "viewer", stranger: None}[who]
            assert got._state.db == "default" and not got._state.adding
    assert _IMAGE.first(user, 2**62) is None


@pytest.mark.parametrize("key", [2**63, 10**30, -(2**63) - 1])
def test_it_answers_404_for_ids_beyond_64_bits(user, key):
    project = ProjectFactory(owner=user)
    make_ready_dataset(project, n=1, user=user, thumbnails=False)
    for check in (image_for, dataset_for):
        with pytest.raises(Http404):
            check(user, key)
    with pytest.raises(Http404):
        image_for(user, str(key))


def test_it_compiles_once_and_runs_with_new_values(user):
    project = ProjectFactory(owner=user)
    ds = make_ready_dataset(project, n=4, user=user, thumbnails=False)
    query = PreparedQuery(
        lambda index: IonImage.objects.filter(dataset=ds, index=index)[:1], index=2_000_000_001
    )
    assert [query.first(index=i).index for i in (2, 0, 3)] == [2, 0, 3]
    assert query.first(index=9) is None
    assert list(query._plans) == ["default"]


def test_it_refuses_a_placeholder_that_is_not_in_the_query(user):
    query = PreparedQuery(lambda index: IonImage.objects.filter(index=3)[:1], index=2_000_000_001)
    with pytest.raises(ValueError, match="index"):
        query.first(index=1)
