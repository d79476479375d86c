"""The ``gs`` layout (METASPACE off-sample gold standard): ``<dataset>/<label>/<image>.png``, or
the root itself one dataset: ``<label>/<image>.png``. Folder names are the labels."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ionsieve_core.imagesets.layouts.common import (
    UNLABELLED_FOLDERS,
    duplicates,
    listed,
    match_class,
    natural_key,
)
from ionsieve_core.imagesets.layouts.plan import DatasetPlan, ImageItem
from ionsieve_core.imagesets.layouts.scan import Scan


def _folder_labels(folder: str, classes: list[str] | None, unknown: dict[str, None]) -> list[str]:
    """The labels a label folder gives its images; an unknown folder name is noted in `unknown`."""
    label = match_class(folder, classes)
    if label is None and folder.lower() in UNLABELLED_FOLDERS:
        return []
    if label is None:
        unknown[folder] = None
        return []
    return [] if (not classes and folder.lower() in UNLABELLED_FOLDERS) else [label]


def plan_gs(scan: Scan, classes: list[str] | None, problems: list[str]) -> list[DatasetPlan]:
    deep = any(len(p.parts) >= 3 for p in scan.images)
    want = 3 if deep else 2
    misplaced = [p.as_posix() for p in scan.images if len(p.parts) != want]
    if misplaced:
        where = "<dataset>/<label>/<image>" if deep else "<label>/<image>"
        problems.append(
            f"{len(misplaced)} image(s) are not where the gold-standard layout expects them "
            f"({where}): "
            f"{listed(misplaced)}"
        )
    groups: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for p in scan.images:
        if len(p.parts) != want:
            continue
        ds = p.parts[0] if deep else (scan.root.name or "images")
        groups[ds].append((p.parts[-2], p))
    unknown: dict[str, None] = {}
    datasets = []
    for ds in sorted(groups, key=natural_key):
        d = DatasetPlan(ds)
        for folder, p in sorted(groups[ds], key=lambda fp: natural_key(fp[1].name)):
            d.items.append(ImageItem(p.stem, [scan.root / p], _folder_labels(folder, classes, unknown)))
        duplicates(d, problems)
        datasets.append(d)
    if unknown:
        problems.append(
            f"label folder(s) {listed(list(unknown))} are not among this project's classes "
            f"(allowed: {', '.join(classes or [])})"
        )
    return datasets
