"""Small generated MSI files for dataset tests."""

from __future__ import annotations

from pathlib import Path

from ionsieve_core.msi.synthetic import write_synthetic_imzml
from tests.shared_data import SHARED_DATA

REAL = SHARED_DATA / "imzml"
REAL_FILES = {
    "continuous": REAL / "pyimzml_examples" / "Example_Continuous.imzML",
    "processed": REAL / "pyimzml_examples" / "Example_Processed.imzML",
    "masspix": REAL / "masspix_cut" / "cut_masspix.imzML",
    "m2aia": REAL / "pym2aia_test20px" / "test.imzML",
    "metaspace": REAL / "metaspace_untreated_tiny" / "Untreated_3_434_tiny.imzML",
}


def synthetic(tmp_path: Path, name: str = "gen", **kw):
    kw.setdefault("n_on", 4)
    kw.setdefault("n_off", 4)
    kw.setdefault("peaks_per_spectrum_noise", 20)
    return write_synthetic_imzml(tmp_path / name, kw.pop("height", 12), kw.pop("width", 15), **kw)


def write_mz_list(path: Path, mzs, names=None) -> Path:
    lines = ["mz,name"] + [f"{mz!r},{(names[i] if names else f'ion{i}')}" for i, mz in enumerate(mzs)]
    path.write_text("\n".join(lines) + "\n")
    return path
