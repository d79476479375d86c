"""Finding the datasets, images and labels in a folder of pictures, without writing anything.

Three layouts:

- ``gs`` (METASPACE off-sample gold standard): ``<dataset>/<label>/<image>.png``, or the root
  itself one dataset: ``<label>/<image>.png``. Folder names are the labels.
- ``flat``: folders of images, labels (optional) from a CSV ``file,label``. The images of one
  folder form one dataset named after the folder.
- ``channels`` (multi-channel microscopy, as in the Human Protein Atlas): ``<id>_<channel>.png``
  files grouped into one item per id; labels from a CSV ``Id,Target``.

`plan_import` collects every problem before raising one ImageSetError, so that a biologist can
fix a whole upload at once. Only file headers are read; pixels are decoded later by read_image.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imagesets.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, image_shape, not_an_image

LAYOUTS = ("gs", "flat", "channels")
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
LABEL_COLUMNS = (
    "label",
    "labels",
    "target",
    "targets",
    "class",
    "classes",
    "category",
    "annotation",
)
FILE_COLUMNS = (
    "file",
    "filename",
    "file_name",
    "image",
    "image_name",
    "imagename",
    "name",
    "path",
    "id",
    "image_id",
    "imageid",
    "sample",
    "cell",
    "cell_id",
)
MAX_LISTED = 20  # per kind of problem; the rest is counted in one more sentence
MAX_CSV_BYTES = 200_000_000  # a labels table, not a data dump: read whole, so bounded


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


# ---------------------------------------------------------------- small helpers
def natural_key(text: str) -> list:
    """cell2 before cell10."""
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", text)]


def _ignored(name: str) -> bool:
    """Files that accompany collections and are silently skipped (not reported as non-images)."""
    low = name.lower()
    return (
        name.startswith(".")
        or low.endswith(".csv")
        or low in ("thumbs.db", "desktop.ini")
        or low.startswith(("readme", "license", "licence", "copying", "notice", "citation"))
    )


def _listed(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass
class _Scan:
    root: Path
    images: list[Path]  # relative to root
    others: list[Path]  # not images, not ignored
    csvs: list[Path]  # relative to root


def _scan(root: Path) -> _Scan:
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
    return _Scan(root, images, others, csvs)


def _match_class(name: str, classes: list[str] | None) -> str | None:
    """The project's spelling of a class name (exact, else unique case-insensitive match)."""
    if not classes:
        return name
    if name in classes:
        return name
    folded = [c for c in classes if c.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _is_channel_name(ch: str, channels: list[str] | None) -> bool:
    if channels:
        return ch.lower() in {c.lower() for c in channels}
    return ch.lower() in KNOWN_CHANNELS or bool(_NUMBERED_CHANNEL.match(ch))


def _channel_split(stem: str) -> tuple[str, str] | None:
    m = _CHANNEL_FILE.match(stem)
    return (m.group("id"), m.group("ch")) if m else None


def _find_csv(folder: Path, csvs: list[Path], root: Path) -> Path | None:
    """labels.csv, else train.csv, else the only CSV in `folder` (relative paths from the scan)."""
    here = [root / c for c in csvs if (root / c).parent == folder]
    for wanted in ("labels.csv", "train.csv"):
        for c in here:
            if c.name.lower() == wanted:
                return c
    return here[0] if len(here) == 1 else None


def _unwrap(scan: _Scan, classes: list[str] | None) -> _Scan:
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
    if classes and _match_class(top, classes) is not None:
        return scan
    new_root = root / top

    def inside(paths: list[Path]) -> list[Path]:
        return [Path(*p.parts[1:]) for p in paths]

    return _Scan(new_root, inside(scan.images), inside(scan.others), inside(scan.csvs))


def _looks_like_channels(images: list[Path], channels: list[str] | None) -> bool:
    if not images:
        return False
    groups: dict[tuple[Path, str], set[str]] = defaultdict(set)
    matched = 0
    for p in images:
        split = _channel_split(p.stem)
        if split and _is_channel_name(split[1], channels):
            matched += 1
            groups[(p.parent, split[0])].add(split[1].lower())
    if matched < 0.8 * len(images) or not groups:
        return False
    suffixes = set().union(*groups.values())
    multi = sum(1 for g in groups.values() if len(g) > 1)
    return len(suffixes) >= 2 and multi >= 0.5 * len(groups)


def _detect(scan: _Scan, has_csv: bool, classes: list[str] | None, channels: list[str] | None) -> str:
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
        known = [
            f for f in folders if _match_class(f, classes) is not None or f.lower() in UNLABELLED_FOLDERS
        ]
        if has_csv:
            return "gs" if len(known) == len(folders) else "flat"
        return "gs" if known else "flat"
    if has_csv or 1 in depths:
        return "flat"
    # Without classes: several folders are label folders; a single one is just where the images are.
    return "gs" if len(folders) >= 2 else "flat"


def detect_layout(root: Path) -> str:
    """ "gs", "flat" or "channels", guessed from the folder structure and file names."""
    scan = _unwrap(_scan(Path(root)), None)
    return _detect(scan, _find_csv(scan.root, scan.csvs, scan.root) is not None, None, None)


# ---------------------------------------------------------------- labels CSV
def read_text(path: Path, warnings: list[str]) -> str:
    """A CSV's text whatever Excel saved it as: UTF-8 (with or without BOM), UTF-16, else
    Windows-1252/Latin-1 with a warning (never a crash)."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for encoding, label in (("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        warnings.append(f"{path.name} is not UTF-8; it was read as {label}, so check accented names")
        return text
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


@dataclass
class _Row:
    line: int
    key: str
    tokens: list[str]


def _parse_csv(path: Path, known_keys: set[str], warnings: list[str], problems: list[str]) -> list[_Row]:
    if path.stat().st_size > MAX_CSV_BYTES:
        problems.append(
            f"{path.name} is larger than {MAX_CSV_BYTES // 1_000_000} MB, too large for a labels table"
        )
        return []
    text = read_text(path, warnings).replace("\x00", "")
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [
        (i + 1, r) for i, r in enumerate(csv.reader(io.StringIO(text), dialect)) if any(c.strip() for c in r)
    ]
    if not rows:
        warnings.append(f"{path.name} is empty; no labels were read from it")
        return []
    first = [c.strip().lower() for c in rows[0][1]]
    file_col = next((first.index(c) for c in FILE_COLUMNS if c in first), None)
    label_col = next((first.index(c) for c in LABEL_COLUMNS if c in first), None)
    if file_col is not None and label_col is not None:
        data = rows[1:]
    else:
        if max(len(r) for _, r in rows) < 2:
            problems.append(f"{path.name} needs two columns, file and label (for example: file,label)")
            return []
        file_col, label_col = 0, 1
        if _key_variants(rows[0][1][0].strip()) & known_keys:
            data = rows  # no header line: the first row already names an image
        else:
            data = rows[1:]
            warnings.append(
                f"{path.name}: the columns {', '.join(rows[0][1][:2])} were read as file and label"
            )
    split = re.compile(r"[\s|]+" if dialect.delimiter != "|" else r"\s+")
    out = []
    for line, r in data:
        key = r[file_col].strip() if file_col < len(r) else ""
        if not key:
            continue
        label = r[label_col].strip() if label_col < len(r) else ""
        out.append(_Row(line, key, [t for t in split.split(label) if t]))
    return out


def _key_variants(key: str) -> set[str]:
    """The ways a CSV may name an image: with or without extension, with or without a folder."""
    k = key.replace("\\", "/").strip()
    k = k[2:] if k.startswith("./") else k
    out = {k, k.casefold()}
    p = Path(k)
    if p.suffix.lower() in IMAGE_SUFFIXES + (".jpg", ".jpeg", ".bmp", ".gif"):
        stem = str(p.with_suffix("")).replace("\\", "/")
        out |= {stem, stem.casefold()}
    return out


def _resolve_tokens(tokens: list[str], classes: list[str] | None) -> tuple[list[str], list[str], list[str]]:
    """(class names, unknown names, numbers that need a class list)."""
    names: list[str] = []
    unknown: list[str] = []
    numbers: list[str] = []
    for t in tokens:
        match = _match_class(t, classes)
        if match is not None and (classes or not t.isdigit()):
            names.append(match)
        elif t.isdigit() and classes and int(t) < len(classes):
            names.append(classes[int(t)])  # HPA style: Target holds indices into the class list
        elif t.isdigit() and not classes:
            numbers.append(t)
        else:
            unknown.append(t)
    return list(dict.fromkeys(names)), unknown, numbers


def _apply_csv(
    csv_path: Path,
    root: Path,
    targets: list[tuple[DatasetPlan, ImageItem]],
    classes: list[str] | None,
    warnings: list[str],
    problems: list[str],
) -> None:
    index: dict[str, list[tuple[DatasetPlan, ImageItem]]] = defaultdict(list)
    for d, item in targets:
        keys = {item.name, f"{d.name}/{item.name}"}
        for p in item.paths:
            keys |= {p.name, f"{d.name}/{p.name}"}
            for base in (root, csv_path.parent):
                try:
                    rel = p.relative_to(base).as_posix()
                except ValueError:
                    continue
                keys |= {rel, str(Path(rel).with_suffix("").as_posix())}
        for k in keys | {k.casefold() for k in keys}:
            if all(x[1] is not item for x in index[k]):
                index[k].append((d, item))
    rows = _parse_csv(csv_path, set(index), warnings, problems)
    missing: list[str] = []
    ambiguous: list[str] = []
    unknown: dict[str, None] = {}
    numbers: dict[str, None] = {}
    labelled: set[int] = set()
    for row in rows:
        found: list[tuple[DatasetPlan, ImageItem]] = []
        for k in sorted(_key_variants(row.key), key=lambda s: s != row.key):  # exact spelling first
            if k in index:
                found = index[k]
                break
        if not found:
            missing.append(f"{row.key} (line {row.line})")
            continue
        if len({id(d) for d, _ in found}) > 1:
            ambiguous.append(f"{row.key} (in {', '.join(sorted({d.name for d, _ in found}))})")
            continue
        names, bad, nums = _resolve_tokens(row.tokens, classes)
        unknown.update(dict.fromkeys(bad))
        numbers.update(dict.fromkeys(nums))
        for _, item in found:
            item.labels = list(dict.fromkeys(item.labels + names))  # repeated rows add labels
            labelled.add(id(item))
    if missing:
        problems.append(
            f"{csv_path.name} names {len(missing)} file(s) that are not in the folder: {_listed(missing)}"
        )
    if ambiguous:
        problems.append(
            f"{csv_path.name} names file(s) found in several datasets, write them as dataset/file: "
            f"{_listed(ambiguous)}"
        )
    if unknown:
        problems.append(
            f"{csv_path.name} uses class name(s) that are not this project's classes: "
            f"{_listed(list(unknown))} (allowed: {', '.join(classes or [])})"
        )
    if numbers:
        problems.append(
            f"{csv_path.name} gives classes as numbers ({_listed(list(numbers), 5)}) "
            "but no class list is known to turn them into names"
        )
    unlabelled = sum(1 for _, item in targets if id(item) not in labelled)
    if rows and unlabelled:
        warnings.append(
            f"{unlabelled} image(s) have no row in {csv_path.name} and are imported without a label"
        )


# ---------------------------------------------------------------- the plan
def _dataset_names(dirs: list[Path], root: Path) -> dict[Path, str]:
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


def _header_problems(scan: _Scan, max_pixels: int, problems: list[str]) -> dict[Path, tuple[int, int, int]]:
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


def _duplicates(d: DatasetPlan, problems: list[str], what: str = "name") -> None:
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
        problems.append(f"dataset {d.name} has several images with the same {what}: {_listed(dups)}")


def _plan_gs(scan: _Scan, classes: list[str] | None, problems: list[str]) -> list[DatasetPlan]:
    deep = any(len(p.parts) >= 3 for p in scan.images)
    want = 3 if deep else 2
    misplaced = [p.as_posix() for p in scan.images if len(p.parts) != want]
    if misplaced:
        where = "<dataset>/<label>/<image>" if deep else "<label>/<image>"
        problems.append(
            f"{len(misplaced)} image(s) are not where the gold-standard layout expects them "
            f"({where}): "
            f"{_listed(misplaced)}"
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
            label = _match_class(folder, classes)
            if label is None and folder.lower() in UNLABELLED_FOLDERS:
                labels: list[str] = []
            elif label is None:
                unknown[folder] = None
                labels = []
            else:
                labels = [] if (not classes and folder.lower() in UNLABELLED_FOLDERS) else [label]
            d.items.append(ImageItem(p.stem, [scan.root / p], labels))
        _duplicates(d, problems)
        datasets.append(d)
    if unknown:
        problems.append(
            f"label folder(s) {_listed(list(unknown))} are not among this project's classes "
            f"(allowed: {', '.join(classes or [])})"
        )
    return datasets


def _plan_flat(
    scan: _Scan,
    labels_csv: Path | None,
    classes: list[str] | None,
    warnings: list[str],
    problems: list[str],
) -> list[DatasetPlan]:
    by_dir: dict[Path, list[Path]] = defaultdict(list)
    for p in scan.images:
        by_dir[p.parent].append(p)
    names = _dataset_names(sorted(by_dir, key=lambda d: natural_key(d.as_posix())), scan.root)
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
        _duplicates(d, problems)
        datasets.append(d)
        folder_of[id(d)] = folder
    _labels(scan, datasets, folder_of, labels_csv, classes, warnings, problems)
    return datasets


def _labels(
    scan: _Scan,
    datasets: list[DatasetPlan],
    folder_of: dict[int, Path],
    labels_csv: Path | None,
    classes: list[str] | None,
    warnings: list[str],
    problems: list[str],
) -> None:
    """Labels from the given CSV, else one found in the root, else one per dataset folder."""
    every = [(d, item) for d in datasets for item in d.items]
    csv_path = labels_csv or _find_csv(scan.root, scan.csvs, scan.root)
    if csv_path is not None:
        _apply_csv(Path(csv_path), scan.root, every, classes, warnings, problems)
        return
    root_csvs = [c for c in scan.csvs if len(c.parts) == 1]
    if len(root_csvs) > 1:
        warnings.append(
            f"several CSV files ({', '.join(c.name for c in root_csvs)}) "
            "and none called labels.csv: no labels were read"
        )
    for d in datasets:
        folder = scan.root / folder_of[id(d)]
        if folder == scan.root:
            continue
        own = _find_csv(folder, scan.csvs, scan.root)
        if own is not None:
            _apply_csv(own, scan.root, [(d, item) for item in d.items], classes, warnings, problems)


def detected_channel_order(found: set[str]) -> list[str]:
    """HPA order (red, green, blue, yellow) first, then any other channel alphabetically."""
    low = {c.lower(): c for c in found}
    first = [low[c] for c in HPA_ORDER if c in low]
    return first + sorted((c for k, c in low.items() if k not in HPA_ORDER), key=str.lower)


def _plan_channels(
    scan: _Scan,
    labels_csv: Path | None,
    channels: list[str] | None,
    classes: list[str] | None,
    shapes: dict[Path, tuple[int, int, int]],
    warnings: list[str],
    problems: list[str],
) -> tuple[list[DatasetPlan], list[str]]:
    groups: dict[tuple[Path, str], dict[str, Path]] = defaultdict(dict)
    unmatched: list[str] = []
    for p in scan.images:
        split = _channel_split(p.stem)
        if split is None:
            unmatched.append(p.as_posix())
            continue
        ident, ch = split
        chans = groups[(p.parent, ident)]
        if ch.lower() in chans:
            problems.append(f"{ident} has two files for channel {ch}: {chans[ch.lower()].name} and {p.name}")
            continue
        chans[ch.lower()] = p
    found = {ch for g in groups.values() for ch in g}
    order = [c for c in channels] if channels else detected_channel_order(found)
    wanted = [c.lower() for c in order]
    extra = sorted(found - set(wanted))
    if unmatched:
        problems.append(
            f"{len(unmatched)} file(s) do not end in _<channel> (one of {', '.join(order)}): "
            f"{_listed(unmatched)}"
        )
    if extra and channels:
        n = sum(1 for g in groups.values() for c in g if c in extra)
        warnings.append(
            f"{n} file(s) of channel(s) {', '.join(extra)} were skipped (channels asked for: "
            f"{', '.join(order)})"
        )
    if len(wanted) != len(set(wanted)):
        problems.append(f"the channel list {', '.join(order)} names a channel twice")
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
        problems.append(f"{len(lacking)} image(s) lack a channel: {_listed(lacking)}")
    if sizes_differ:
        problems.append(
            f"{len(sizes_differ)} image(s) have channels of different sizes: {_listed(sizes_differ)}"
        )
    names = _dataset_names(sorted(by_dir, key=lambda d: natural_key(d.as_posix())), scan.root)
    datasets = []
    folder_of: dict[int, Path] = {}
    for folder, name in names.items():
        d = DatasetPlan(name, by_dir[folder])
        _duplicates(d, problems, "id")
        datasets.append(d)
        folder_of[id(d)] = folder
    _labels(scan, datasets, folder_of, labels_csv, classes, warnings, problems)
    return datasets, order


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
    scan = _unwrap(_scan(root), classes)
    if labels_csv is not None and not Path(labels_csv).is_file():
        problems.append(f"the labels file {Path(labels_csv).name} was not found")
        labels_csv = None
    has_csv = labels_csv is not None or _find_csv(scan.root, scan.csvs, scan.root) is not None
    layout = layout or _detect(scan, has_csv, classes, channels)
    shapes = _header_problems(scan, max_pixels, problems)
    if not scan.images:
        problems.append("no images were found (PNG or TIFF expected)")
    order: list[str] = []
    if layout == "gs":
        datasets = _plan_gs(scan, classes, problems)
    elif layout == "flat":
        datasets = _plan_flat(scan, labels_csv, classes, warnings, problems)
    else:
        datasets, order = _plan_channels(scan, labels_csv, channels, classes, shapes, warnings, problems)
    datasets = [d for d in datasets if d.items]
    if scan.images and not datasets and not problems:
        problems.append("no complete images were found")
    if problems:
        raise ImageSetError(list(dict.fromkeys(problems)))
    seen = {label for d in datasets for item in d.items for label in item.labels}
    classes_seen = [c for c in classes if c in seen] if classes else sorted(seen, key=natural_key)
    return ImportPlan(layout, datasets, classes_seen, warnings, order if layout == "channels" else [])
