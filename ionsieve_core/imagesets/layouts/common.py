"""Helpers every layout planner shares: sorting, class-name matching, dataset naming, messages."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ionsieve_core.imagesets.layouts.plan import DatasetPlan, ImageItem

# Folders that merely hold the images of the root's dataset (Kaggle-style `train/`, `images/`).
GENERIC_FOLDERS = {
    "images",
    "image",
    "imgs",
    "img",
    "data",
    "pictures",
    "png",
    "pngs",
    "tif",
    "tiff",
    "train",
    "files",
}
UNLABELLED_FOLDERS = {"unlabelled", "unlabeled"}
MAX_LISTED = 20  # per kind of problem; the rest is counted in one more sentence


def natural_key(text: str) -> list:
    """cell2 before cell10."""
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", text)]


def listed(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def match_class(name: str, classes: list[str] | None) -> str | None:
    """The project's spelling of a class name (exact, else unique case-insensitive match)."""
    if not classes:
        return name
    if name in classes:
        return name
    folded = [c for c in classes if c.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def dataset_names(dirs: list[Path], root: Path) -> dict[Path, str]:
    """One dataset per folder, named after it; the root (or a lone generic `images/` folder)
    after the root."""
    names: dict[Path, str] = {}
    if len(dirs) == 1 and (dirs[0] == Path(".") or dirs[0].name.lower() in GENERIC_FOLDERS):
        return {dirs[0]: root.name or "images"}
    counts: dict[str, int] = defaultdict(int)
    for d in dirs:
        counts[d.name if d != Path(".") else root.name] += 1
    for d in dirs:
        short = d.name if d != Path(".") else root.name
        names[d] = short if counts[short] == 1 else d.as_posix()
    return names


def duplicates(d: DatasetPlan, problems: list[str], what: str = "name") -> None:
    seen: dict[str, ImageItem] = {}
    dups: list[str] = []
    for item in d.items:
        key = item.name.casefold()
        if key in seen:
            files = [p.name for p in seen[key].paths[:1] + item.paths[:1]]
            dups.append(f"{item.name} ({' and '.join(files)})")
        else:
            seen[key] = item
    if dups:
        problems.append(f"dataset {d.name} has several images with the same {what}: {listed(dups)}")
