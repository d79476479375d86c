"""Which layout a folder is (``gs``, ``flat`` or ``channels``), from its structure and file names."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ionsieve_core.imagesets.layouts.channels import channel_split, is_channel_name
from ionsieve_core.imagesets.layouts.common import UNLABELLED_FOLDERS, match_class
from ionsieve_core.imagesets.layouts.scan import Scan, find_csv, scan_folder, unwrap


def _looks_like_channels(images: list[Path], channels: list[str] | None) -> bool:
    if not images:
        return False
    groups: dict[tuple[Path, str], set[str]] = defaultdict(set)
    matched = 0
    for p in images:
        split = channel_split(p.stem)
        if split and is_channel_name(split[1], channels):
            matched += 1
            groups[(p.parent, split[0])].add(split[1].lower())
    if matched < 0.8 * len(images) or not groups:
        return False
    suffixes = set().union(*groups.values())
    multi = sum(1 for g in groups.values() if len(g) > 1)
    return len(suffixes) >= 2 and multi >= 0.5 * len(groups)


def detect(scan: Scan, has_csv: bool, classes: list[str] | None, channels: list[str] | None) -> str:
    images = scan.images
    if _looks_like_channels(images, channels):
        return "channels"
    depths = {len(p.parts) for p in images}
    if not images or depths == {1}:
        return "flat"
    if max(depths) >= 3:
        return "gs"
    folders = {p.parts[0] for p in images if len(p.parts) == 2}
    if any(len(c.parts) == 2 and c.parts[0] in folders for c in scan.csvs):
        return "flat"  # a folder with its own labels CSV is a dataset, not a label
    if classes:
        known = [f for f in folders if match_class(f, classes) is not None or f.lower() in UNLABELLED_FOLDERS]
        if has_csv:
            return "gs" if len(known) == len(folders) else "flat"
        return "gs" if known else "flat"
    if has_csv or 1 in depths:
        return "flat"
    # Without classes: several folders are label folders; a single one is just where the images are.
    return "gs" if len(folders) >= 2 else "flat"


def detect_layout(root: Path) -> str:
    """ "gs", "flat" or "channels", guessed from the folder structure and file names."""
    scan = unwrap(scan_folder(Path(root)), None)
    return detect(scan, find_csv(scan.root, scan.csvs, scan.root) is not None, None, None)
