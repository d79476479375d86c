"""IonImage.project: the dataset's project, copied onto each image, and the project-wide
gallery's indexes (issue 13).

Project-wide galleries filtered through the dataset (a join), so no index served their
orderings: every page sorted the project's rows (100,000 images: 424-657 ms p95). The column is
added nullable, filled from the dataset in one UPDATE, then made non-null. The DESC NULLS LAST
indexes mirror 0005's, keyed by project, and carry id and dataset_id (the gallery's filter on
datasets not yet ready reads dataset_id): PostgreSQL only, as in 0005.
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

DESC_INDEXES = {
    "project_image_by_probability_desc": "probability",
    "project_image_by_uncertainty_desc": "uncertainty",
    "project_image_by_mz_desc": "mz",
}


def backfill(apps, schema_editor):
    IonImage = apps.get_model("datasets", "IonImage")
    Dataset = apps.get_model("datasets", "Dataset")
    IonImage.objects.filter(project__isnull=True).update(
        project_id=Subquery(Dataset.objects.filter(pk=OuterRef("dataset_id")).values("project_id")[:1])
    )
    if schema_editor.connection.vendor == "postgresql":
        # The new foreign key's deferred checks must run before the ALTER TABLE below
        # ("pending trigger events" otherwise).
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def create_desc(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in DESC_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "datasets_ionimage" '
            f'("project_id", "{column}" DESC NULLS LAST, "index") INCLUDE ("id", "dataset_id")'
        )


def drop_desc(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in DESC_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0005_gallery_desc_indexes"),
        ("projects", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ionimage",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ionimage",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AddIndex(
            model_name="ionimage",
            index=models.Index(
                fields=["project", "probability", "index"], name="project_image_by_probability"
            ),
        ),
        migrations.AddIndex(
            model_name="ionimage",
            index=models.Index(
                fields=["project", "uncertainty", "index"], name="project_image_by_uncertainty"
            ),
        ),
        migrations.AddIndex(
            model_name="ionimage",
            index=models.Index(fields=["project", "mz", "index"], name="project_image_by_mz"),
        ),
        migrations.AddIndex(
            model_name="ionimage",
            index=models.Index(fields=["project", "name", "index"], name="project_image_by_name"),
        ),
        migrations.AddIndex(
            model_name="ionimage",
            index=models.Index(fields=["project", "dataset", "index"], name="project_image_by_index"),
        ),
        migrations.RunPython(create_desc, drop_desc),
    ]
