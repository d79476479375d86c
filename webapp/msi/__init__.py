"""Pure-Python mass spectrometry imaging: imzML reading, one-pass ion image extraction,
peak picking, m/z lists and display scaling. No Django in here, on purpose."""

from __future__ import annotations

from webapp.msi.errors import MSIError
from webapp.msi.extract import Extraction, extract
from webapp.msi.mzlist import Ion, check_in_range, parse_mz_list
from webapp.msi.peaks import top_peaks
from webapp.msi.reader import ImzMLMeta, read_metadata

__all__ = [
    "Extraction",
    "ImzMLMeta",
    "Ion",
    "MSIError",
    "check_in_range",
    "extract",
    "parse_mz_list",
    "read_metadata",
    "top_peaks",
]
