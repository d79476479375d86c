"""Labels from a CSV (`file,label`, or HPA's `Id,Target`): reading it whatever Excel saved it as,
finding its columns, matching its rows to the planned items and checking its class names."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ionsieve_core.imagesets.images import IMAGE_SUFFIXES
from ionsieve_core.imagesets.layouts.common import listed, match_class
from ionsieve_core.imagesets.layouts.plan import DatasetPlan, ImageItem
from ionsieve_core.imagesets.layouts.scan import Scan, find_csv

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
MAX_CSV_BYTES = 200_000_000  # a labels table, not a data dump: read whole, so bounded

Target = tuple[DatasetPlan, ImageItem]


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


def parse_csv(path: Path, known_keys: set[str], warnings: list[str], problems: list[str]) -> list[_Row]:
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
        if key_variants(rows[0][1][0].strip()) & known_keys:
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


def key_variants(key: str) -> set[str]:
    """The ways a CSV may name an image: with or without extension, with or without a folder."""
    k = key.replace("\\", "/").strip()
    k = k[2:] if k.startswith("./") else k
    out = {k, k.casefold()}
    p = Path(k)
    if p.suffix.lower() in IMAGE_SUFFIXES + (".jpg", ".jpeg", ".bmp", ".gif"):
        stem = str(p.with_suffix("")).replace("\\", "/")
        out |= {stem, stem.casefold()}
    return out


def resolve_tokens(tokens: list[str], classes: list[str] | None) -> tuple[list[str], list[str], list[str]]:
    """(class names, unknown names, numbers that need a class list)."""
    names: list[str] = []
    unknown: list[str] = []
    numbers: list[str] = []
    for t in tokens:
        match = match_class(t, classes)
        if match is not None and (classes or not t.isdigit()):
            names.append(match)
        elif t.isdigit() and classes and int(t) < len(classes):
            names.append(classes[int(t)])  # HPA style: Target holds indices into the class list
        elif t.isdigit() and not classes:
            numbers.append(t)
        else:
            unknown.append(t)
    return list(dict.fromkeys(names)), unknown, numbers


def _index(csv_path: Path, root: Path, targets: list[Target]) -> dict[str, list[Target]]:
    """Every spelling a CSV row may use for each item (name, file, dataset/file, relative path)."""
    index: dict[str, list[Target]] = defaultdict(list)
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
    return index


@dataclass
class _Outcome:
    """What applying the rows found wrong (in row order) and which items got a row."""

    missing: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    unknown: dict[str, None] = field(default_factory=dict)
    numbers: dict[str, None] = field(default_factory=dict)
    labelled: set[int] = field(default_factory=set)


def _apply_rows(rows: list[_Row], index: dict[str, list[Target]], classes: list[str] | None) -> _Outcome:
    out = _Outcome()
    for row in rows:
        found: list[Target] = []
        for k in sorted(key_variants(row.key), key=lambda s: s != row.key):  # exact spelling first
            if k in index:
                found = index[k]
                break
        if not found:
            out.missing.append(f"{row.key} (line {row.line})")
            continue
        if len({id(d) for d, _ in found}) > 1:
            out.ambiguous.append(f"{row.key} (in {', '.join(sorted({d.name for d, _ in found}))})")
            continue
        names, bad, nums = resolve_tokens(row.tokens, classes)
        out.unknown.update(dict.fromkeys(bad))
        out.numbers.update(dict.fromkeys(nums))
        for _, item in found:
            item.labels = list(dict.fromkeys(item.labels + names))  # repeated rows add labels
            out.labelled.add(id(item))
    return out


def _report(csv_path: Path, out: _Outcome, classes: list[str] | None, problems: list[str]) -> None:
    if out.missing:
        problems.append(
            f"{csv_path.name} names {len(out.missing)} file(s) that are not in the folder: "
            f"{listed(out.missing)}"
        )
    if out.ambiguous:
        problems.append(
            f"{csv_path.name} names file(s) found in several datasets, write them as dataset/file: "
            f"{listed(out.ambiguous)}"
        )
    if out.unknown:
        problems.append(
            f"{csv_path.name} uses class name(s) that are not this project's classes: "
            f"{listed(list(out.unknown))} (allowed: {', '.join(classes or [])})"
        )
    if out.numbers:
        problems.append(
            f"{csv_path.name} gives classes as numbers ({listed(list(out.numbers), 5)}) "
            "but no class list is known to turn them into names"
        )


def apply_csv(
    csv_path: Path,
    root: Path,
    targets: list[Target],
    classes: list[str] | None,
    warnings: list[str],
    problems: list[str],
) -> None:
    """Label `targets` from the rows of `csv_path`; every row that does not fit is a problem."""
    index = _index(csv_path, root, targets)
    rows = parse_csv(csv_path, set(index), warnings, problems)
    out = _apply_rows(rows, index, classes)
    _report(csv_path, out, classes, problems)
    unlabelled = sum(1 for _, item in targets if id(item) not in out.labelled)
    if rows and unlabelled:
        warnings.append(
            f"{unlabelled} image(s) have no row in {csv_path.name} and are imported without a label"
        )


def apply_labels(
    scan: Scan,
    datasets: list[DatasetPlan],
    folder_of: dict[int, Path],
    labels_csv: Path | None,
    classes: list[str] | None,
    warnings: list[str],
    problems: list[str],
) -> None:
    """Labels from the given CSV, else one found in the root, else one per dataset folder."""
    every = [(d, item) for d in datasets for item in d.items]
    csv_path = labels_csv or find_csv(scan.root, scan.csvs, scan.root)
    if csv_path is not None:
        apply_csv(Path(csv_path), scan.root, every, classes, warnings, problems)
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
        own = find_csv(folder, scan.csvs, scan.root)
        if own is not None:
            apply_csv(own, scan.root, [(d, item) for item in d.items], classes, warnings, problems)
