"""PostgreSQL specifics of the load work (issue 14): the gallery's DESC NULLS LAST orderings
have indexes that match them (datasets migration 0005), and a label write locks only its
images, never the dataset's row. Server pass of `make test-integration` only."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection, transaction

from tests.factories import UserFactory
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


def test_it_counts_a_label_committed_while_waiting_for_the_image_lock_on_postgresql(
    transactional_db, project, user
):
    """Another user's label, committed while this write waits for the image's lock, is part of
    the consensus this write stores. Read in the locking statement (a join), it was not: after
    the wait PostgreSQL re-checks only the locked row, and the labels came from the statement's
    older snapshot (a stale consensus, found by test_concurrency under load)."""
    needs_backend(SERVER)
    other = UserFactory()
    ds = make_ready_dataset(project, n=2, user=user, thumbnails=False)
    im = ds.images.order_by("index").first()
    errors: list[BaseException] = []

    def label_on() -> None:
        try:
            set_labels(project, [im], user, project.classes[1])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    with psycopg.connect(database_url().replace("postgres://", "postgresql://", 1)) as holder:
        holder.execute("SELECT id FROM datasets_ionimage WHERE id = %s FOR UPDATE", [im.pk])
        holder.execute(
            "INSERT INTO datasets_label (image_id, user_id, value, unsure, created_at, updated_at) "
            "VALUES (%s, %s, %s, false, now(), now())",
            [im.pk, other.pk, project.classes[0]],
        )
        waiting = threading.Thread(target=label_on)
        waiting.start()
        time.sleep(1.0)  # the write is now waiting for the lock held here
        assert waiting.is_alive()
        holder.commit()
    waiting.join(30)
    assert not errors, errors
    im.refresh_from_db()
    # One "off" and one "on": a tie, so no consensus, users disagree, two labels.
    assert (im.consensus, im.users_disagree, im.label_count) == (None, True, 2)
