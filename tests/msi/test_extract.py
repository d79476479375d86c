"""extract() against an independent per-ion computation and against generated truth."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from ionsieve_core.msi import extract, read_metadata, top_peaks
from ionsieve_core.msi.synthetic import SyntheticTruth, write_synthetic_imzml
from tests.msi.conftest import ion_mzs, real_file_params


def _reference_images(path: Path, mzs: np.ndarray, ppm: float) -> np.ndarray:
    """pyimzml getspectrum + a plain sum inside [mz(1-ppm), mz(1+ppm)], pixel by pixel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(str(path))
    coords = np.array(p.coordinates)
    out = np.full((mzs.size, coords[:, 1].max(), coords[:, 0].max()), np.nan)
    for i, (x, y, _z) in enumerate(p.coordinates):
        mz, inten = p.getspectrum(i)
        mz, inten = mz.astype(np.float64), inten.astype(np.float64)
        for j, target in enumerate(mzs):
            lo, hi = target * (1 - ppm * 1e-6), target * (1 + ppm * 1e-6)
            out[j, y - 1, x - 1] = inten[(mz >= lo) & (mz <= hi)].sum()
    return out


@pytest.mark.parametrize("path", real_file_params())
def test_it_matches_pyimzml_ion_images_on_real_files(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mz0, int0 = ImzMLParser(str(path)).getspectrum(0)
    rng = np.random.default_rng(0)
    mzs = rng.choice(mz0[int0 > 0].astype(np.float64), 10, replace=False)  # unsorted
    meta = read_metadata(path)
    for ppm in (3.0, 50.0):
        ex = extract(meta, mzs, ppm=ppm)
        ref = _reference_images(path, mzs, ppm)
        assert ex.images.dtype == np.float32 and ex.images.shape == ref.shape
        np.testing.assert_allclose(ex.images, ref, rtol=1e-5, atol=1e-6)
        assert ex.acquired_mask.all() == (not np.isnan(ref).any())
        assert np.nanmax(ex.images) > 0


@pytest.mark.parametrize(
    "mode,layout", [("processed", "interleaved"), ("processed", "blocked"), ("continuous", "interleaved")]
)
@pytest.mark.parametrize("mz_dtype,int_dtype", [(np.float32, np.float32), (np.float64, np.float64)])
def test_it_recovers_generated_ion_images(
    tmp_path: Path, mode: str, layout: str, mz_dtype: type, int_dtype: type
) -> None:
    truth = write_synthetic_imzml(
        tmp_path / "d",
        18,
        25,
        n_on=5,
        n_off=5,
        mode=mode,
        mz_dtype=mz_dtype,
        int_dtype=int_dtype,
        layout=layout,
        peaks_per_spectrum_noise=60,
        seed=3,
    )
    meta = read_metadata(truth.imzml_path)
    assert meta.mz_dtype == np.dtype(mz_dtype) and meta.int_dtype == np.dtype(int_dtype)
    assert meta.continuous == (mode == "continuous")
    mzs = ion_mzs(truth)
    order = np.random.default_rng(0).permutation(mzs.size)
    ex = extract(meta, mzs[order])
    np.testing.assert_allclose(ex.images, truth.images[order], rtol=1e-5)
    assert ex.warnings == []


def test_it_gathers_scattered_layouts_from_the_memory_map(
    processed: SyntheticTruth, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the package re-exports the function under the module's name, hence import_module
    extract_module = importlib.import_module("ionsieve_core.msi.extract")

    meta = read_metadata(processed.imzml_path)
    mzs = ion_mzs(processed)
    monkeypatch.setattr(extract_module, "_READ_SPAN_RATIO", 0)  # never use read()
    monkeypatch.setattr(extract_module, "_CHUNK_VALUES", 5_000)  # many chunks
    released: list[int] = []
    real_release = extract_module._release
    monkeypatch.setattr(extract_module, "_release", lambda *a: released.append(1) or real_release(*a))
    ex = extract(meta, mzs)
    np.testing.assert_allclose(ex.images, processed.images, rtol=1e-5)
    assert len(released) > 5  # pages of each chunk were handed back


def test_it_leaves_unacquired_pixels_nan(tmp_path: Path) -> None:
    truth = write_synthetic_imzml(
        tmp_path / "holes", 24, 30, n_on=4, n_off=4, non_rectangular=True, peaks_per_spectrum_noise=30, seed=4
    )
    assert not truth.acquired_mask.all()
    meta = read_metadata(truth.imzml_path)
    ex = extract(meta, ion_mzs(truth))
    np.testing.assert_array_equal(ex.acquired_mask, truth.acquired_mask)
    assert np.isnan(ex.images[:, ~truth.acquired_mask]).all()
    assert np.isnan(ex.tic[~truth.acquired_mask]).all()
    assert not np.isnan(ex.images[:, truth.acquired_mask]).any()
    np.testing.assert_allclose(
        ex.images[:, truth.acquired_mask], truth.images[:, truth.acquired_mask], rtol=1e-5
    )


def test_it_normalises_by_tic(processed: SyntheticTruth) -> None:
    meta = read_metadata(processed.imzml_path)
    mzs = ion_mzs(processed)
    raw = extract(meta, mzs)
    norm = extract(meta, mzs, tic_normalise=True)
    np.testing.assert_allclose(norm.images, raw.images / raw.tic[None], rtol=1e-5)
    np.testing.assert_allclose(norm.tic, raw.tic)
    # TIC is the sum of the whole spectrum, checked against the raw arrays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(processed.imzml_path)
    x, y, _ = p.coordinates[7]
    assert raw.tic[y - 1, x - 1] == pytest.approx(float(p.getspectrum(7)[1].sum()), rel=1e-5)


@pytest.mark.parametrize("mode", ["processed", "continuous"])
def test_it_counts_and_zeroes_bad_intensities(tmp_path: Path, mode: str) -> None:
    truth = write_synthetic_imzml(
        tmp_path / "bad",
        12,
        12,
        n_on=3,
        n_off=3,
        mode=mode,
        n_bad_intensities=9,
        peaks_per_spectrum_noise=40,
        seed=5,
    )
    assert truth.n_nan == 5 and truth.n_negative == 4
    ex = extract(read_metadata(truth.imzml_path), ion_mzs(truth))
    assert "5 NaN intensities were set to zero" in ex.warnings
    assert "4 negative intensities were set to zero" in ex.warnings
    assert np.isfinite(ex.tic).all() and (ex.tic > 0).all()
    np.testing.assert_allclose(ex.images, truth.images, rtol=1e-5)


def test_it_sums_overlapping_windows_exactly(processed: SyntheticTruth) -> None:
    meta = read_metadata(processed.imzml_path)
    m = ion_mzs(processed)[3]
    mzs = np.array([m, m * (1 + 2e-6), m * (1 - 1e-6), m * 1.0004])  # windows overlap
    ex = extract(meta, mzs)
    ref = _reference_images(Path(processed.imzml_path), mzs, 3.0)
    np.testing.assert_allclose(ex.images, ref, rtol=1e-5)


def test_it_reports_progress_and_writes_into_out(processed: SyntheticTruth, tmp_path: Path) -> None:
    meta = read_metadata(processed.imzml_path)
    mzs = ion_mzs(processed)
    seen: list[float] = []
    out = np.lib.format.open_memmap(
        tmp_path / "images.npy", mode="w+", dtype=np.float32, shape=(mzs.size, *meta.shape)
    )
    ex = extract(meta, mzs, progress=seen.append, out=out)
    assert ex.images is out
    assert 2 <= len(seen) <= 102 and seen[-1] == 1.0 and seen == sorted(seen)
    out.flush()
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), processed.images, rtol=1e-5)


def test_it_handles_an_empty_ion_list(continuous: SyntheticTruth) -> None:
    ex = extract(read_metadata(continuous.imzml_path), np.array([]))
    assert ex.images.shape == (0, 30, 40)
    assert np.isfinite(ex.tic[ex.acquired_mask]).all()


def test_it_computes_the_exact_mean_spectrum_for_continuous_data(continuous: SyntheticTruth) -> None:
    meta = read_metadata(continuous.imzml_path)
    ex = extract(meta, ion_mzs(continuous))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(continuous.imzml_path)
    spectra = np.array([p.getspectrum(i)[1] for i in range(len(p.coordinates))], np.float64)
    np.testing.assert_allclose(ex.mean_spectrum[0], p.getspectrum(0)[0])
    np.testing.assert_allclose(ex.mean_spectrum[1], spectra.mean(axis=0), rtol=1e-9)


def test_it_bins_the_mean_spectrum_of_processed_data(processed: SyntheticTruth) -> None:
    meta = read_metadata(processed.imzml_path)
    ex = extract(meta, ion_mzs(processed))
    mz, mean = ex.mean_spectrum
    assert mz.size <= 100_001 and np.all(np.diff(mz) > 0)
    # nothing is lost: the binned mean adds up to the mean TIC
    assert mean.sum() == pytest.approx(float(np.nanmean(ex.tic)), rel=1e-6)


def test_it_picks_the_ions_as_top_peaks(processed: SyntheticTruth) -> None:
    ex = extract(read_metadata(processed.imzml_path), np.array([]))
    peaks = top_peaks(*ex.mean_spectrum, n=30)
    assert np.all(np.diff(peaks) > 0)  # ascending m/z
    for mz in ion_mzs(processed):
        assert np.min(np.abs(peaks - mz)) / mz < 3e-6, mz  # inside a ±3 ppm window


def test_it_merges_peaks_closer_than_the_tolerance() -> None:
    mz = np.array([100.0, 100.0001, 100.0002, 100.0003, 200.0, 200.1, 200.2])
    y = np.array([0.0, 5.0, 1.0, 3.0, 0.0, 2.0, 0.0])  # maxima at 100.0001, 100.0003, 200.1
    peaks = top_peaks(mz, y, n=10, ppm=3.0)  # 100.0003 is 2 ppm from the stronger one
    np.testing.assert_allclose(peaks, [100.0001, 200.1])
    np.testing.assert_allclose(top_peaks(mz, y, n=1), [100.0001])
