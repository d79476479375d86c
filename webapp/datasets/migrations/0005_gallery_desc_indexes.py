"""Indexes for the gallery orderings that sort DESC NULLS LAST (-probability, the default;
uncertainty; -mz), on PostgreSQL.

The plain (dataset, probability, index) indexes cannot serve them there: a backward scan gives
NULLS FIRST and `index` descending, so every such page sorted the dataset's rows (3-5 ms for
10,000 images, EXPLAIN ANALYZE). These match the ORDER BY exactly and carry the id, so the
paginator's `SELECT id ... LIMIT 100 OFFSET n` is an index-only scan (0.4 ms at n = 5,000).
SQLite sorts NULLs first in ascending order and has no INCLUDE: nothing is made there.
"""

from __future__ import annotations

from django.db import migrations

INDEXES = {
    "image_by_probability_desc": "probability",
    "image_by_uncertainty_desc": "uncertainty",
    "image_by_mz_desc": "mz",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "datasets_ionimage" '
            f'("dataset_id", "{column}" DESC NULLS LAST, "index") INCLUDE ("id")'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("datasets", "0004_resumable_upload")]

    operations = [migrations.RunPython(create, drop)]
