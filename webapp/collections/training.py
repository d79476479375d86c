"""Shared collections as extra training data for a project (read by classifier.training)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from webapp.collections.models import CollectionVersion, TrainingCollection
from webapp.projects.models import Project


@dataclass
class CollectionSource:
    version: CollectionVersion

    def load(self, context: bool):
        """Arrays, contexts, labels, group names (one per source dataset) and a record for the model."""
        items = list(self.version.items.order_by("index"))
        stack = np.load(self.version.array_path, mmap_mode="r")
        ctx = np.load(self.version.directory / "contexts.npy", mmap_mode="r") if context else None
        arrays = [np.asarray(stack[it.index, : it.height, : it.width], dtype=np.float32) for it in items]
        contexts = [np.asarray(ctx[it.index, : it.height, : it.width]) for it in items] if context else None
        groups = [f"c{self.version.collection_id}:{it.dataset_name}" for it in items]
        info = {
            "collection": self.version.collection_id,
            "name": self.version.collection.name,
            "version": self.version.number,
            "items": len(items),
        }
        return arrays, contexts, [it.label for it in items], groups, info


def sources_for(project: Project) -> list[CollectionSource]:
    """The collections this project trains on, checked now: revoked access means no data."""
    sources = []
    for use in TrainingCollection.objects.filter(project=project).select_related("collection", "added_by"):
        if use.added_by is None or not use.collection.visible_to(use.added_by):
            continue
        version = use.pinned_version or use.collection.latest
        if version is not None:
            sources.append(CollectionSource(version))
    return sources
