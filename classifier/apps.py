from __future__ import annotations

from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    label = "classifier"

    def ready(self) -> None:
        from classifier import receivers  # noqa: F401  (connects the signal handlers)
