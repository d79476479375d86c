"""The ``channels`` layout (multi-channel microscopy, as in the Human Protein Atlas):
``<id>_<channel>.png`` files grouped into one item per id; labels from a CSV ``Id,Target``."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ionsieve_core.imagesets.layouts.common import dataset_names, duplicates, listed, natural_key
from ionsieve_core.imagesets.layouts.labels_csv import apply_labels
from ionsieve_core.imagesets.layouts.plan import DatasetPlan, ImageItem
from ionsieve_core.imagesets.layouts.scan import Scan

# Human Protein Atlas channel order first; any other channel follows alphabetically.
HPA_ORDER = ("red", "green", "blue", "yellow")
# Suffixes that name a channel (stain, fluorophore, colour), so that `mouse1_liver.png` in a flat
# folder is not mistaken for a channel file. An explicit `channels` list or layout overrides this.
KNOWN_CHANNELS = {
    "red",
    "green",
    "blue",
    "yellow",
    "cyan",
    "magenta",
    "farred",
    "grey",
    "gray",
    "dapi",
    "hoechst",
    "gfp",
    "egfp",
    "rfp",
    "yfp",
    "cfp",
    "bfp",
    "mcherry",
    "tdtomato",
    "phalloidin",
    "bf",
    "brightfield",
    "phase",
    "dic",
    "protein",
    "marker",
    "nuclear",
    "er",
    "tubulin",
    "actin",
}
_NUMBERED_CHANNEL = re.compile(r"^(ch|c|w|channel)\d{1,2}$", re.IGNORECASE)
_CHANNEL_FILE = re.compile(r"^(?P<id>.+)_(?P<ch>[A-Za-z][A-Za-z0-9-]*)$")

Shapes = dict[Path, tuple[int, int, int]]


def is_channel_name(ch: str, channels: list[str] | None) -> bool:
    if channels:
        return ch.lower() in {c.lower() for c in channels}
    return ch.lower() in KNOWN_CHANNELS or bool(_NUMBERED_CHANNEL.match(ch))


def channel_split(stem: str) -> tuple[str, str] | None:
    m = _CHANNEL_FILE.match(stem)
    return (m.group("id"), m.group("ch")) if m else None


def detected_channel_order(found: set[str]) -> list[str]:
    """HPA order (red, green, blue, yellow) first, then any other channel alphabetically."""
    low = {c.lower(): c for c in found}
    first = [low[c] for c in HPA_ORDER if c in low]
    return first + sorted((c for k, c in low.items() if k not in HPA_ORDER), key=str.lower)


def _group(scan: Scan, problems: list[str]) -> tuple[dict[tuple[Path, str], dict[str, Path]], list[str]]:
    """The files of each (folder, id) by lower-case channel, and the files named otherwise."""
    groups: dict[tuple[Path, str], dict[str, Path]] = defaultdict(dict)
    unmatched: list[str] = []
    for p in scan.images:
        split = channel_split(p.stem)
        if split is None:
            unmatched.append(p.as_posix())
            continue
        ident, ch = split
        chans = groups[(p.parent, ident)]
        if ch.lower() in chans:
            problems.append(f"{ident} has two files for channel {ch}: {chans[ch.lower()].name} and {p.name}")
            continue
        chans[ch.lower()] = p
    return groups, unmatched


def _items_by_folder(
    scan: Scan,
    groups: dict[tuple[Path, str], dict[str, Path]],
    order: list[str],
    shapes: Shapes,
    problems: list[str],
) -> dict[Path, list[ImageItem]]:
    """One item per id that has every channel of `order`, all of one size."""
    wanted = [c.lower() for c in order]
    lacking: list[str] = []
    sizes_differ: list[str] = []
    by_dir: dict[Path, list[ImageItem]] = defaultdict(list)
    for (folder, ident), chans in sorted(groups.items(), key=lambda kv: natural_key(kv[0][1])):
        missing = [order[i] for i, c in enumerate(wanted) if c not in chans]
        if missing:
            lacking.append(f"{ident} (no {', '.join(missing)})")
            continue
        paths = [chans[c] for c in wanted]
        sizes = {shapes[p][:2] for p in paths if p in shapes}
        if len(sizes) > 1:
            sizes_differ.append(f"{ident} ({', '.join(f'{w}x{h}' for h, w in sorted(sizes))})")
        by_dir[folder].append(ImageItem(ident, [scan.root / p for p in paths], []))
    if lacking:
        problems.append(f"{len(lacking)} image(s) lack a channel: {listed(lacking)}")
    if sizes_differ:
        problems.append(
            f"{len(sizes_differ)} image(s) have channels of different sizes: {listed(sizes_differ)}"
        )
    return by_dir


def plan_channels(
    scan: Scan,
    labels_csv: Path | None,
    channels: list[str] | None,
    classes: list[str] | None,
    shapes: Shapes,
    warnings: list[str],
    problems: list[str],
) -> tuple[list[DatasetPlan], list[str]]:
    """The datasets (one per folder) and the channel order; `shapes` are the headers read."""
    groups, unmatched = _group(scan, problems)
    found = {ch for g in groups.values() for ch in g}
    order = [c for c in channels] if channels else detected_channel_order(found)
    wanted = [c.lower() for c in order]
    extra = sorted(found - set(wanted))
    if unmatched:
        problems.append(
            f"{len(unmatched)} file(s) do not end in _<channel> (one of {', '.join(order)}): "
            f"{listed(unmatched)}"
        )
    if extra and channels:
        n = sum(1 for g in groups.values() for c in g if c in extra)
        warnings.append(
            f"{n} file(s) of channel(s) {', '.join(extra)} were skipped (channels asked for: "
            f"{', '.join(order)})"
        )
    if len(wanted) != len(set(wanted)):
        problems.append(f"the channel list {', '.join(order)} names a channel twice")
    by_dir = _items_by_folder(scan, groups, order, shapes, problems)
    names = dataset_names(sorted(by_dir, key=lambda d: natural_key(d.as_posix())), scan.root)
    datasets = []
    folder_of: dict[int, Path] = {}
    for folder, name in names.items():
        d = DatasetPlan(name, by_dir[folder])
        duplicates(d, problems, "id")
        datasets.append(d)
        folder_of[id(d)] = folder
    apply_labels(scan, datasets, folder_of, labels_csv, classes, warnings, problems)
    return datasets, order
