from __future__ import annotations

from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "webapp.ingestion"
    label = "ingestion"

    def ready(self) -> None:
        # Registers the Celery tasks by name (datasets.ingest, datasets.import_images), and
        # keeps each dataset's status in step with its processing job (receivers).
        from celery.signals import worker_ready

        from webapp.ingestion import receivers, tasks  # noqa: F401

        worker_ready.connect(start_upload_janitor, weak=False)


def start_upload_janitor(sender=None, **kwargs) -> None:
    """Each worker frees abandoned uploads' disk space (webapp/ingestion/resumable.py)."""
    from webapp.ingestion.resumable import start_janitor

    start_janitor()
