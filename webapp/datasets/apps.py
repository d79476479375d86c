from __future__ import annotations

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "webapp.datasets"
    label = "datasets"

    def ready(self) -> None:
        # Registers the Celery tasks by name, and keeps datasets in step with their ingestion jobs.
        from webapp.datasets import receivers, tasks  # noqa: F401
