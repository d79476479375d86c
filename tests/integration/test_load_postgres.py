"""PostgreSQL specifics of the load work (issue 14): the gallery's DESC NULLS LAST orderings
have indexes that match them (datasets migration 0005), and a label write locks only its
images, never the dataset's row. Server pass of `make test-integration` only."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from tests.gallery_data import make_ready_dataset
from tests.integration.conftest import SERVER, database_url, needs_backend
from webapp.datasets import gallery
from webapp.datasets.labels import set_labels
from webapp.datasets.models import IonImage

pytestmark = pytest.mark.integration


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # a Sort node now means: no index fits
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_it_pages_every_gallery_ordering_without_sorting_on_postgresql(transactional_db, project, user):
    needs_backend(SERVER)
    ds = make_ready_dataset(project, n=300, user=user, thumbnails=False)
    fitting = {"-probability": "image_by_probability_desc", "uncertainty": "image_by_uncertainty_desc"}
    fitting["-mz"] = "image_by_mz_desc"
    for ordering, index in fitting.items():
        inner = gallery.ordered(IonImage.objects.filter(dataset=ds), ordering).values("pk")[200:300]
        with transaction.atomic():
            text = plan(*inner.query.sql_with_params())
        assert index in text and "Sort" not in text, text


def test_it_labels_while_another_transaction_holds_the_dataset_row_on_postgresql(
    transactional_db, project, user
):
    needs_backend(SERVER)
    ds = make_ready_dataset(project, n=5, user=user, thumbnails=False)
    images = list(ds.images.order_by("index")[:2])
    with psycopg.connect(database_url().replace("postgres://", "postgresql://", 1)) as holder:
        holder.execute("SELECT id FROM datasets_dataset WHERE id = %s FOR UPDATE", [ds.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # the old lock query waited here, then failed
        try:
            set_labels(project, images, user, project.classes[0])
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
        holder.rollback()
    assert ds.images.filter(consensus=project.classes[0]).count() == 2
