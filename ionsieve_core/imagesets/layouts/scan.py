"""One walk over the folder: its images, its CSV files and anything else, relative to the root."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ionsieve_core.imagesets.images import IMAGE_SUFFIXES
from ionsieve_core.imagesets.layouts.common import match_class


@dataclass
class Scan:
    root: Path
    images: list[Path]  # relative to root
    others: list[Path]  # not images, not ignored
    csvs: list[Path]  # relative to root


def _ignored(name: str) -> bool:
    """Files that accompany collections and are silently skipped (not reported as non-images)."""
    low = name.lower()
    return (
        name.startswith(".")
        or low.endswith(".csv")
        or low in ("thumbs.db", "desktop.ini")
        or low.startswith(("readme", "license", "licence", "copying", "notice", "citation"))
    )


def scan_folder(root: Path) -> Scan:
    images: list[Path] = []
    others: list[Path] = []
    csvs: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Hidden folders and macOS resource forks are packaging, never data.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        rel_dir = Path(dirpath).relative_to(root)
        for f in sorted(filenames):
            rel = rel_dir / f
            if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith("."):
                images.append(rel)
            elif f.lower().endswith(".csv") and not f.startswith("."):
                csvs.append(rel)
            elif not _ignored(f):
                others.append(rel)
    return Scan(root, images, others, csvs)


def find_csv(folder: Path, csvs: list[Path], root: Path) -> Path | None:
    """labels.csv, else train.csv, else the only CSV in `folder` (relative paths from the scan)."""
    here = [root / c for c in csvs if (root / c).parent == folder]
    for wanted in ("labels.csv", "train.csv"):
        for c in here:
            if c.name.lower() == wanted:
                return c
    return here[0] if len(here) == 1 else None


def unwrap(scan: Scan, classes: list[str] | None) -> Scan:
    """Look through a folder that only wraps the collection ("zip a folder" gives `x.zip/x/...`).

    Not when that single folder is a label (a class of the project): `on/a.png` is a
    gold-standard dataset whose images are all on-sample.
    """
    root = scan.root
    top_files = [p for p in scan.images + scan.csvs + scan.others if len(p.parts) == 1]
    tops = {p.parts[0] for p in scan.images + scan.csvs + scan.others if len(p.parts) > 1}
    if top_files or len(tops) != 1:
        return scan
    (top,) = tops
    if classes and match_class(top, classes) is not None:
        return scan
    new_root = root / top

    def inside(paths: list[Path]) -> list[Path]:
        return [Path(*p.parts[1:]) for p in paths]

    return Scan(new_root, inside(scan.images), inside(scan.others), inside(scan.csvs))
