from __future__ import annotations

from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    label = "classifier"

    def ready(self) -> None:
        from classifier import receivers, tasks  # noqa: F401  (signal handlers, Celery tasks by name)
