"""The synthetic dataset generator writes real, realistic imzML files."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from pyimzml.ImzMLParser import ImzMLParser

from ionsieve_core.msi.synthetic import SyntheticTruth, write_synthetic_imzml


def _parser(path: str) -> ImzMLParser:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ImzMLParser(path)


def test_it_writes_files_pyimzml_reads(processed: SyntheticTruth) -> None:
    p = _parser(processed.imzml_path)
    assert len(p.coordinates) == 30 * 40
    assert p.spectrum_mode == "centroid" and p.polarity == "positive"
    assert p.imzmldict["max count of pixels x"] == 40
    assert (
        Path(processed.ibd_path).read_bytes()[:16].hex()
        == p.metadata.file_description.param_by_name["universally unique identifier"]
        .strip("{}")
        .replace("-", "")
        .lower()
    )
    for i in (0, 517, 1199):
        mz, inten = p.getspectrum(i)
        x, y, _ = p.coordinates[i]
        assert np.all(np.diff(mz) > 0)  # centroids sorted by m/z
        for j, (ion, _label) in enumerate(processed.ions):
            hit = np.abs(mz - ion) <= ion * 3e-6
            assert inten[hit].sum() == np.float32(processed.images[j, y - 1, x - 1])


def test_it_writes_continuous_files_pyimzml_reads(continuous: SyntheticTruth) -> None:
    p = _parser(continuous.imzml_path)
    mz0, _ = p.getspectrum(0)
    mz9, _ = p.getspectrum(9)
    np.testing.assert_array_equal(mz0, mz9)  # one shared axis
    assert p.mzOffsets[0] == p.mzOffsets[9]
    assert p.spectrum_mode == "profile"


def test_it_makes_a_tissue_blob_with_on_and_off_sample_ions(processed: SyntheticTruth) -> None:
    tissue = processed.tissue_mask
    assert 0.3 <= tissue.mean() <= 0.7
    for (mz, label), img in zip(processed.ions, processed.images, strict=True):
        inside, outside = img[tissue].mean(), img[~tissue].mean()
        if label == "on":
            assert inside > 3 * outside, mz
        else:
            # matrix and halo ions live outside; suppressed ions are merely dimmer inside
            assert outside > inside, mz
    assert {lab for _, lab in processed.ions} == {"on", "off"}


def test_it_leaves_holes_when_not_rectangular(tmp_path: Path) -> None:
    truth = write_synthetic_imzml(
        tmp_path / "nr", 20, 30, n_on=2, n_off=2, non_rectangular=True, peaks_per_spectrum_noise=10
    )
    p = _parser(truth.imzml_path)
    assert len(p.coordinates) == truth.acquired_mask.sum() < 20 * 30
    assert max(c[0] for c in p.coordinates) == 30 and max(c[1] for c in p.coordinates) == 20


def test_it_writes_many_pixels_quickly(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    truth = write_synthetic_imzml(tmp_path / "fast", 100, 100, n_on=10, n_off=10, peaks_per_spectrum_noise=50)
    assert time.perf_counter() - t0 < 10
    assert truth.images.shape == (20, 100, 100)
    assert Path(truth.ibd_path).stat().st_size > 10_000 * 50 * 12
