from __future__ import annotations

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "webapp.datasets"
    label = "datasets"

    def ready(self) -> None:
        # Registers the Celery tasks by name (datasets.export).
        from webapp.datasets import tasks  # noqa: F401
