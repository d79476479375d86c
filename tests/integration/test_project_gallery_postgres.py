"""PostgreSQL: the project-wide gallery's orderings are served by the project-keyed indexes
(datasets migration 0006, issue 13), not by sorting the project's rows. Server pass of
`make test-integration` only."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tests.factories import ProjectFactory
from tests.gallery_data import make_ready_dataset
from tests.integration.conftest import SERVER, needs_backend
from webapp.datasets import gallery
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.integration


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        # A Sort node now means: no index fits (the small test table would otherwise make an
        # incremental sort on the dataset's index look cheaper).
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_it_pages_every_project_gallery_ordering_without_sorting_on_postgresql(
    transactional_db, project, user
):
    needs_backend(SERVER)
    make_ready_dataset(project, n=200, user=user, thumbnails=False, seed=1)
    make_ready_dataset(project, n=200, user=user, thumbnails=False, seed=2, name="Second")
    busy = make_ready_dataset(project, n=20, user=user, thumbnails=False, seed=3, name="Busy")
    Dataset.objects.filter(pk=busy.pk).update(status=Dataset.Status.PROCESSING)
    other = ProjectFactory(owner=user)  # most rows elsewhere: the project's own indexes pay
    for seed in range(4):
        make_ready_dataset(other, n=300, user=user, thumbnails=False, seed=10 + seed, name=f"Other {seed}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_ionimage")
    for ordering in gallery.ORDERINGS:
        qs = gallery.ordered(gallery.project_images(project), ordering, across_datasets=True)
        page = qs.values("pk")[200:300]
        with transaction.atomic():
            text = plan(*page.query.sql_with_params())
        assert "project_image_by" in text and "Sort" not in text and "Join" not in text, (ordering, text)
        assert len(list(page)) == 100


def test_it_starts_each_cursor_page_where_the_cursor_is_on_postgresql(transactional_db, project, user):
    """A `next` link's page is an index range scan starting at the cursor's value (the first
    sort column in the Index Cond), with no sort: what keeps page 500 as cheap as page 1."""
    needs_backend(SERVER)
    for seed in range(3):
        make_ready_dataset(project, n=200, user=user, thumbnails=False, seed=seed, name=f"D{seed}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_ionimage")
    base = gallery.project_images(project)
    for ordering in gallery.ORDERINGS:
        keys = gallery.sort_keys(ordering, across_datasets=True)
        rows = list(gallery.ordered(base, ordering, across_datasets=True)[300:302])
        values = [getattr(rows[0], k.field) for k in keys]
        first = gallery.keyset_ranges(keys, values)[0]
        page = base.filter(first).order_by(*[k.expression() for k in keys]).values_list("pk", flat=True)[:101]
        with transaction.atomic():
            text = plan(*page.query.sql_with_params())
        cond = [line for line in text.splitlines() if "Index Cond" in line]
        # Any index that starts at the cursor will do (by dataset, the unique (dataset, index) one
        # serves as well as the project's).
        assert "Index" in text and "Sort" not in text, (ordering, text)
        assert cond and keys[0].field in cond[0], (ordering, text)
        assert list(page)[0] == rows[1].pk


def test_it_plans_for_memory_and_ssd_not_spinning_disks_on_postgresql(transactional_db):
    """settings.py sends random_page_cost=1.1 with each connection: at PostgreSQL's default (4)
    a deep page of a large project was planned as a sort of all its rows."""
    needs_backend(SERVER)
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert float(cursor.fetchone()[0]) == 1.1
