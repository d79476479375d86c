"""Reading the m/z lists people upload: plain CSVs and METASPACE annotation exports."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ionsieve_core.msi.errors import MSIError

_MZ_NAMES = {"mz", "m/z", "m_z", "mass", "moverz"}
_HEADER_SCAN_LINES = 10


class IonList(list):
    """A list of Ion that also says how many rows were skipped as unusable."""

    skipped: int = 0


@dataclass(frozen=True)
class Ion:
    mz: float
    name: str
    formula: str = ""
    adduct: str = ""


def _decode(data: bytes) -> str:
    # Excel on Windows writes latin-1/cp1252; everything else should be UTF-8 (maybe BOM).
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _load(path_or_text: str | bytes | os.PathLike[str]) -> str:
    if isinstance(path_or_text, bytes):
        return _decode(path_or_text)
    if isinstance(path_or_text, os.PathLike):
        return _decode(Path(path_or_text).read_bytes())
    text = str(path_or_text)
    if "\n" not in text and len(text) < 4096:
        p = Path(text)
        try:
            if p.is_file():
                return _decode(p.read_bytes())
        except OSError:
            pass
    return text


def _norm(cell: str) -> str:
    return cell.strip().strip('"').strip().lower()


def _split(line: str, delim: str) -> list[str]:
    return next(csv.reader([line], delimiter=delim), [])


def _guess_delimiter(lines: list[str]) -> str:
    sample = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in (",", ";", "\t")}
        return max(counts, key=counts.get) if any(counts.values()) else ","


def parse_mz_list(path_or_text: str | bytes | os.PathLike[str]) -> IonList:
    """Parse a CSV/TSV with an `mz` (or `m/z`) column; optional name, formula, adduct.

    Preamble lines (METASPACE exports start with a "Generated at ..." line) are skipped by
    looking for the header row among the first lines. Rows whose m/z is not a positive number
    are skipped. Raises MSIError when nothing usable remains.
    """
    text = _load(path_or_text)
    lines = text.splitlines()
    header_at, delim, cols = -1, ",", []
    for i, line in enumerate(lines[:_HEADER_SCAN_LINES]):
        if not line.strip():
            continue
        for d in (_guess_delimiter(lines[i : i + 5]), ",", ";", "\t"):
            cells = [_norm(c) for c in _split(line, d)]
            if any(c in _MZ_NAMES for c in cells):
                header_at, delim, cols = i, d, cells
                break
        if header_at >= 0:
            break
    if header_at < 0:
        raise MSIError("the m/z list has no usable rows: expected a column named mz")
    mz_col = next(i for i, c in enumerate(cols) if c in _MZ_NAMES)

    def col(name: str) -> int | None:
        return cols.index(name) if name in cols else None

    name_col = col("name") if col("name") is not None else col("moleculenames")
    formula_col = col("formula") if col("formula") is not None else col("sumformula")
    adduct_col = col("adduct")

    ions = IonList()
    skipped = 0
    reader = csv.reader(io.StringIO("\n".join(lines[header_at + 1 :])), delimiter=delim)
    for row in reader:
        if not row or not any(c.strip() for c in row):
            continue

        def cell(i: int | None, row: list[str] = row) -> str:
            return row[i].strip() if i is not None and i < len(row) else ""

        raw = cell(mz_col)
        try:
            # semicolon files from European locales may use a decimal comma
            mz = float(raw.replace(",", ".") if delim != "," else raw)
        except ValueError:
            skipped += 1
            continue
        if not math.isfinite(mz) or mz <= 0:
            skipped += 1
            continue
        formula, adduct = cell(formula_col), cell(adduct_col)
        name = cell(name_col) or (formula + adduct if formula else "") or f"{mz:.4f}"
        ions.append(Ion(mz=mz, name=name, formula=formula, adduct=adduct))
    if not ions:
        raise MSIError("the m/z list has no usable rows: expected a column named mz")
    ions.skipped = skipped
    return ions


def check_in_range(ions: list[Ion], mz_min: float, mz_max: float) -> list[Ion]:
    """The ions inside the dataset's m/z range; MSIError if there are none."""
    inside = [ion for ion in ions if mz_min <= ion.mz <= mz_max]
    if not inside:
        raise MSIError(
            f"none of the {len(ions):,} m/z values lies in this dataset's range {mz_min:.1f}-{mz_max:.1f}"
        )
    return inside
