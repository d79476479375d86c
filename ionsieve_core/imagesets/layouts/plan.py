"""The plan `plan_import` returns: datasets of items (files per channel) with their labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LAYOUTS = ("gs", "flat", "channels")


@dataclass
class ImageItem:
    """One picture to import: `name` is the file name without extension (multi-channel: the id),
    `paths` one file per channel in channel order, `labels` class names (empty: unlabelled)."""

    name: str
    paths: list[Path]
    labels: list[str] = field(default_factory=list)


@dataclass
class DatasetPlan:
    name: str
    items: list[ImageItem] = field(default_factory=list)


@dataclass
class ImportPlan:
    layout: str
    datasets: list[DatasetPlan]
    classes_seen: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # channel order of multi-channel items
