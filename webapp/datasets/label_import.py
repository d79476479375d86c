"""Labels from a CSV (`mz` or `name`, and `label`), all or nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from webapp.datasets import labels
from webapp.datasets.models import Dataset, IonImage, LabelEvent


class LabelImportError(ValueError):
    pass


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise LabelImportError("the CSV file is not text")


def import_labels(dataset: Dataset, path: Path, user) -> int:
    text = read_text(path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    if not rows:
        raise LabelImportError("the CSV file has no rows")
    cols = {c.strip().lower(): c for c in rows[0] if c}
    if "label" not in cols or not ({"mz", "name"} & set(cols)):
        raise LabelImportError("the CSV needs a 'label' column and an 'mz' or 'name' column")
    images = list(dataset.images.all())
    by_name = {im.name: im for im in images}
    mz_sorted = sorted((im.mz, im) for im in images if im.mz is not None)
    ppm = float(dataset.params.get("ppm", 3.0))
    problems: list[str] = []
    assignments: dict[str, list[IonImage]] = {}
    seen: set[int] = set()
    for n, row in enumerate(rows, start=2):
        im = None
        if "name" in cols and (row.get(cols["name"]) or "").strip():
            name = row[cols["name"]].strip()
            im = by_name.get(name) or by_name.get(Path(name).stem)
        if im is None and "mz" in cols and (row.get(cols["mz"]) or "").strip():
            try:
                mz = float(row[cols["mz"]])
            except ValueError:
                problems.append(f"line {n}: '{row[cols['mz']]}' is not an m/z value")
                continue
            im = _nearest(mz_sorted, mz, ppm)
        if im is None:
            problems.append(
                f"line {n}: no image matches {row.get(cols.get('name', ''), '') or row.get(cols.get('mz', ''), '')}"
            )
            continue
        try:
            value = labels.normalise(dataset.project, row[cols["label"]])
        except labels.LabelError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        if im.pk in seen:
            problems.append(f"line {n}: {im.display_name} is labelled twice")
            continue
        seen.add(im.pk)
        assignments.setdefault(value, []).append(im)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise LabelImportError(f"{len(problems)} problem(s), nothing imported: {shown}")
    for value, ims in assignments.items():
        labels.set_labels(dataset.project, ims, user, value, source=LabelEvent.Source.IMPORT)
    return len(seen)


def _nearest(mz_sorted: list[tuple[float, IonImage]], mz: float, ppm: float) -> IonImage | None:
    import bisect

    keys = [m for m, _ in mz_sorted]
    i = bisect.bisect_left(keys, mz)
    best = None
    for j in (i - 1, i):
        if 0 <= j < len(keys):
            d = abs(keys[j] - mz)
            if d <= max(mz * ppm * 1e-6, 1e-4) and (best is None or d < best[0]):
                best = (d, mz_sorted[j][1])
    return best[1] if best else None
