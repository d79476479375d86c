"""The project-wide gallery's indexes end with `id` (issue 13, keyset pages).

Across a project, (score, index) repeats, once per dataset: a page boundary inside such a tie
was not defined (OFFSET pages could repeat or skip an image), and the gallery's "next page" link
now continues after the last row's key values, which needs one total order. Each ordering
therefore ends with `id` project-wide, and its index too, so that no page sorts. On
PostgreSQL the indexes also carry (INCLUDE) what the gallery's query reads besides, so a page is
an index-only scan once the table is vacuumed, and the DESC NULLS LAST variants of 0006 are
rebuilt the same way.
"""

from __future__ import annotations

from django.db import migrations, models

DESC_INDEXES = {
    "project_image_by_probability_desc": "probability",
    "project_image_by_uncertainty_desc": "uncertainty",
    "project_image_by_mz_desc": "mz",
}


def rebuild_desc(ending: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name, column in DESC_INDEXES.items():
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
            schema_editor.execute(
                f'CREATE INDEX "{name}" ON "datasets_ionimage" '
                f'("project_id", "{column}" DESC NULLS LAST, {ending})'
            )

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('classifier', '0004_quick_update'),
        ('datasets', '0006_project_images'),
        ('projects', '0002_hotkeys'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='ionimage',
            name='project_image_by_probability',
        ),
        migrations.RemoveIndex(
            model_name='ionimage',
            name='project_image_by_uncertainty',
        ),
        migrations.RemoveIndex(
            model_name='ionimage',
            name='project_image_by_mz',
        ),
        migrations.RemoveIndex(
            model_name='ionimage',
            name='project_image_by_name',
        ),
        migrations.RemoveIndex(
            model_name='ionimage',
            name='project_image_by_index',
        ),
        migrations.AddIndex(
            model_name='ionimage',
            index=models.Index(fields=['project', 'probability', 'index', 'id'], include=('dataset',), name='project_image_by_probability'),
        ),
        migrations.AddIndex(
            model_name='ionimage',
            index=models.Index(fields=['project', 'uncertainty', 'index', 'id'], include=('dataset',), name='project_image_by_uncertainty'),
        ),
        migrations.AddIndex(
            model_name='ionimage',
            index=models.Index(fields=['project', 'mz', 'index', 'id'], include=('dataset',), name='project_image_by_mz'),
        ),
        migrations.AddIndex(
            model_name='ionimage',
            index=models.Index(fields=['project', 'name', 'index', 'id'], include=('dataset',), name='project_image_by_name'),
        ),
        migrations.AddIndex(
            model_name='ionimage',
            index=models.Index(fields=['project', 'dataset', 'index'], include=('id',), name='project_image_by_index'),
        ),
        migrations.RunPython(
            rebuild_desc('"index", "id") INCLUDE ("dataset_id"'),
            rebuild_desc('"index") INCLUDE ("id", "dataset_id"'),
        ),
    ]
