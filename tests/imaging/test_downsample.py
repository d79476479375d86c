"""Smaller copies of big arrays for figures (ionsieve_core/imaging/downsample.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ionsieve_core.imaging.downsample import block_mean, downsample_spectrum


def test_it_block_averages_large_images_ignoring_nan():
    a = np.arange(600 * 300, dtype=float).reshape(600, 300)
    a[0, 0] = np.nan
    small, f = block_mean(a)
    assert f == 3 and small.shape == (200, 100) and max(small.shape) <= 256
    assert small[0, 0] == pytest.approx(np.nanmean(a[:3, :3]))
    assert small[5, 7] == pytest.approx(a[15:18, 21:24].mean())
    nan_block = np.full((300, 300), np.nan)
    assert np.isnan(block_mean(nan_block)[0]).all()


def test_it_downsamples_spectra_keeping_every_maximum():
    mz = np.linspace(100, 1000, 50_001)
    intensity = np.zeros_like(mz)
    peaks = [123, 20_000, 49_999]
    intensity[peaks] = [5, 7, 9]
    small_mz, small_int = downsample_spectrum(mz, intensity)
    assert small_mz.size <= 5000
    assert set(mz[peaks]) <= set(small_mz) and sorted(small_int)[-3:] == [5, 7, 9]
