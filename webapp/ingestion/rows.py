"""Image rows: one IonImage per image of a dataset, written by the imzML ingestion and the
picture imports alike."""

from __future__ import annotations

from django.db import connection, transaction

from webapp.datasets.models import Dataset, IonImage


@transaction.atomic
def save_images(
    dataset: Dataset,
    rows: list[dict],
    *,
    height: int,
    width: int,
    metadata: dict,
    channels: int = 1,
    sizes: list[tuple[int, int]] | None = None,
) -> None:
    """Create or update one IonImage per row (by index), delete rows beyond the new count."""
    existing = {im.index: im for im in IonImage.objects.filter(dataset=dataset)}
    to_create, to_update = [], []
    for n, row in enumerate(rows):
        h, w = sizes[n] if sizes else (height, width)
        im = existing.get(n)
        fields = dict(
            mz=row.get("mz"),
            name=row.get("name", ""),
            formula=row.get("formula", ""),
            adduct=row.get("adduct", ""),
            height=h,
            width=w,
        )
        if im is None:
            to_create.append(IonImage(dataset=dataset, project_id=dataset.project_id, index=n, **fields))
        else:
            changed = any(getattr(im, k) != v for k, v in fields.items())
            if changed:
                for k, v in fields.items():
                    setattr(im, k, v)
                # The image changed: its old prediction no longer applies.
                im.probability = im.probabilities = im.uncertainty = None
                im.predicted = ""
                to_update.append(im)
    IonImage.objects.filter(dataset=dataset, index__gte=len(rows)).delete()
    IonImage.objects.bulk_create(to_create, batch_size=1000)
    IonImage.objects.bulk_update(
        to_update,
        [
            "mz",
            "name",
            "formula",
            "adduct",
            "height",
            "width",
            "probability",
            "probabilities",
            "uncertainty",
            "predicted",
        ],
        batch_size=1000,
    )
    dataset.height, dataset.width, dataset.channels = height, width, channels
    dataset.image_count = len(rows)
    dataset.metadata = metadata
    dataset.revision += 1
    dataset.save(
        update_fields=["height", "width", "channels", "image_count", "metadata", "revision", "updated_at"]
    )
    if len(to_create) >= 1000 and connection.vendor == "postgresql":
        # Fresh statistics: before autovacuum runs, the planner would think the table is tiny.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {IonImage._meta.db_table}")
