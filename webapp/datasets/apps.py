from __future__ import annotations

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "webapp.datasets"
    label = "datasets"

    def ready(self) -> None:
        from webapp.datasets import tasks  # noqa: F401  (registers the Celery tasks by name)
