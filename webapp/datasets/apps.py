from __future__ import annotations

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "webapp.datasets"
    label = "datasets"

    def ready(self) -> None:
        # Registers the Celery tasks by name, and keeps datasets in step with their ingestion jobs.
        from celery.signals import worker_ready

        from webapp.datasets import receivers, tasks  # noqa: F401

        worker_ready.connect(start_upload_janitor, weak=False)


def start_upload_janitor(sender=None, **kwargs) -> None:
    """Each worker frees abandoned uploads' disk space (webapp/datasets/resumable.py)."""
    from webapp.datasets.resumable import start_janitor

    start_janitor()
