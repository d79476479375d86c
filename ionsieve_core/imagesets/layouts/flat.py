"""The ``flat`` layout: folders of images, labels (optional) from a CSV ``file,label``. The images
of one folder form one dataset named after the folder."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ionsieve_core.imagesets.layouts.common import dataset_names, duplicates, natural_key
from ionsieve_core.imagesets.layouts.labels_csv import apply_labels
from ionsieve_core.imagesets.layouts.plan import DatasetPlan, ImageItem
from ionsieve_core.imagesets.layouts.scan import Scan


def plan_flat(
    scan: Scan,
    labels_csv: Path | None,
    classes: list[str] | None,
    warnings: list[str],
    problems: list[str],
) -> list[DatasetPlan]:
    by_dir: dict[Path, list[Path]] = defaultdict(list)
    for p in scan.images:
        by_dir[p.parent].append(p)
    names = dataset_names(sorted(by_dir, key=lambda d: natural_key(d.as_posix())), scan.root)
    datasets: list[DatasetPlan] = []
    folder_of: dict[int, Path] = {}
    for folder, name in names.items():
        d = DatasetPlan(
            name,
            [
                ImageItem(p.stem, [scan.root / p], [])
                for p in sorted(by_dir[folder], key=lambda q: natural_key(q.name))
            ],
        )
        duplicates(d, problems)
        datasets.append(d)
        folder_of[id(d)] = folder
    apply_labels(scan, datasets, folder_of, labels_csv, classes, warnings, problems)
    return datasets
