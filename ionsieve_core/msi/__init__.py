"""Pure-Python mass spectrometry imaging: imzML reading, one-pass ion image extraction,
peak picking, m/z lists and generated test files. No Django in here, on purpose."""

from __future__ import annotations

from ionsieve_core.msi.errors import MSIError
from ionsieve_core.msi.extract import Extraction, extract
from ionsieve_core.msi.mzlist import Ion, check_in_range, parse_mz_list
from ionsieve_core.msi.peaks import top_peaks
from ionsieve_core.msi.reader import ImzMLMeta, read_metadata

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
