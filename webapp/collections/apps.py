from __future__ import annotations

from django.apps import AppConfig


class CollectionsConfig(AppConfig):
    name = "webapp.collections"
    label = "collections"
