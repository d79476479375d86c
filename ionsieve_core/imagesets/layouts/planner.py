"""`plan_import`: what importing a folder would create, with every problem found at once.

It scans the folder, detects the layout (unless given), reads the image headers and hands over
to the layout's planner. All problems are collected before one ImageSetError is raised, so that
a biologist can fix a whole upload at once. Only file headers are read; pixels are decoded later
by read_image.
"""

from __future__ import annotations

from pathlib import Path

from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imagesets.images import DEFAULT_MAX_PIXELS, image_shape, not_an_image
from ionsieve_core.imagesets.layouts.channels import plan_channels
from ionsieve_core.imagesets.layouts.common import MAX_LISTED, natural_key
from ionsieve_core.imagesets.layouts.detect import detect
from ionsieve_core.imagesets.layouts.flat import plan_flat
from ionsieve_core.imagesets.layouts.gs import plan_gs
from ionsieve_core.imagesets.layouts.plan import LAYOUTS, ImportPlan
from ionsieve_core.imagesets.layouts.scan import Scan, find_csv, scan_folder, unwrap


def _header_problems(scan: Scan, max_pixels: int, problems: list[str]) -> dict[Path, tuple[int, int, int]]:
    shapes: dict[Path, tuple[int, int, int]] = {}
    not_images: list[str] = []
    for rel in scan.images:
        try:
            shapes[rel] = image_shape(scan.root / rel, rel.as_posix(), max_pixels)
        except ImageSetError as exc:
            if exc.problems == [not_an_image(rel.as_posix())]:
                not_images.append(rel.as_posix())
            else:
                problems.extend(exc.problems)
    not_images += [p.as_posix() for p in scan.others]
    problems.extend(not_an_image(n) for n in not_images[:MAX_LISTED])
    if len(not_images) > MAX_LISTED:
        problems.append(f"{len(not_images) - MAX_LISTED} more files are not images (PNG or TIFF expected)")
    return shapes


def plan_import(
    root: Path,
    layout: str | None = None,
    labels_csv: Path | None = None,
    channels: list[str] | None = None,
    classes: list[str] | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImportPlan:
    """What importing `root` would create: datasets, items (files per channel) and labels.

    `layout` None detects it; `labels_csv` None looks for labels.csv, train.csv or the only CSV
    in the root; `classes` (the project's) validates label names and maps class numbers;
    `channels` fixes the channel order. Reads headers only and writes nothing. Raises
    ImageSetError with every problem found.
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageSetError(f"{root.name or root} is not a folder")
    if layout is not None and layout not in LAYOUTS:
        raise ImageSetError(f"unknown layout '{layout}' (one of {', '.join(LAYOUTS)})")
    classes = list(classes) if classes else None
    channels = [c.strip() for c in channels if c.strip()] if channels else None
    problems: list[str] = []
    warnings: list[str] = []
    scan = unwrap(scan_folder(root), classes)
    if labels_csv is not None and not Path(labels_csv).is_file():
        problems.append(f"the labels file {Path(labels_csv).name} was not found")
        labels_csv = None
    has_csv = labels_csv is not None or find_csv(scan.root, scan.csvs, scan.root) is not None
    layout = layout or detect(scan, has_csv, classes, channels)
    shapes = _header_problems(scan, max_pixels, problems)
    if not scan.images:
        problems.append("no images were found (PNG or TIFF expected)")
    order: list[str] = []
    if layout == "gs":
        datasets = plan_gs(scan, classes, problems)
    elif layout == "flat":
        datasets = plan_flat(scan, labels_csv, classes, warnings, problems)
    else:
        datasets, order = plan_channels(scan, labels_csv, channels, classes, shapes, warnings, problems)
    datasets = [d for d in datasets if d.items]
    if scan.images and not datasets and not problems:
        problems.append("no complete images were found")
    if problems:
        raise ImageSetError(list(dict.fromkeys(problems)))
    seen = {label for d in datasets for item in d.items for label in item.labels}
    classes_seen = [c for c in classes if c in seen] if classes else sorted(seen, key=natural_key)
    return ImportPlan(layout, datasets, classes_seen, warnings, order if layout == "channels" else [])
