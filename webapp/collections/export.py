"""A collection version as a .zip in the import layouts (images, labels, who labelled what)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from webapp.collections.models import CollectionVersion
from webapp.datasets.export import check_layout, write_layout_zip
from webapp.projects.models import Task


def export_version(version: CollectionVersion, out: Path, layout: str | None = None) -> int:
    collection = version.collection
    layout = layout or (
        "channels" if collection.channels else "flat" if collection.task == Task.MULTILABEL else "gs"
    )
    check_layout(layout, collection.task)
    items = list(version.items.order_by("index"))
    stack = np.load(version.array_path, mmap_mode="r")
    groups: dict[str, list] = {}
    for it in items:
        groups.setdefault(it.dataset_name, []).append(
            (it.name, np.asarray(stack[it.index, : it.height, : it.width]), it.label.split())
        )
    datasets = list(groups.items())

    def extra(root: Path) -> None:
        with open(root / "labelled_by.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["dataset", "name", "label", "user", "user_label"])
            for it in items:
                for user, value in sorted(it.labels_by.items()):
                    w.writerow([it.dataset_name, it.name, it.label, user, value])

    write_layout_zip(out, datasets, layout, collection.channels or [], collection.classes, extra)
    return len(items)
