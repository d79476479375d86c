"""Shared fixtures for the pure MSI package tests (no Django needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.msi.synthetic import SyntheticTruth, write_synthetic_imzml
from tests.shared_data import SHARED_DATA

# Real files live beside the project (see shared/data/README.md for sources and licences).
DATA = SHARED_DATA / "imzml"
REAL_FILES = sorted(DATA.glob("*/*.imzML"))


def real_file_params() -> list:
    if not REAL_FILES:
        return [pytest.param(None, marks=pytest.mark.skip(reason="shared/data not present"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in REAL_FILES]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def processed(synth_dir: Path) -> SyntheticTruth:
    return write_synthetic_imzml(synth_dir / "processed", 30, 40, n_on=8, n_off=8, mode="processed", seed=1)


@pytest.fixture(scope="session")
def continuous(synth_dir: Path) -> SyntheticTruth:
    return write_synthetic_imzml(
        synth_dir / "continuous",
        30,
        40,
        n_on=8,
        n_off=8,
        mode="continuous",
        peaks_per_spectrum_noise=400,
        seed=2,
    )


def ion_mzs(truth: SyntheticTruth) -> np.ndarray:
    return np.array([mz for mz, _ in truth.ions])
