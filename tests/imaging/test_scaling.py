"""Display scaling: hotspot clips, scales and the statistics the image page scales with."""

from __future__ import annotations

import numpy as np
import pytest

from ionsieve_core.imaging.scaling import display_scale, equalization_table, hotspot_clip, scale


def test_it_clips_hotspots_at_the_percentile_of_nonzero_pixels() -> None:
    img = np.zeros((20, 20))
    img[:10] = np.arange(1, 201).reshape(10, 20)  # 200 non-zero values, 200 zeros
    img[0, 0] = 1e9  # one hotspot
    img[19, 19] = np.nan
    clipped = hotspot_clip(img, q=99)
    nz = img[np.isfinite(img) & (img != 0)]
    assert np.nanmax(clipped) == pytest.approx(np.percentile(nz, 99))
    assert np.isnan(clipped[19, 19]) and clipped[15, 15] == 0
    assert clipped[5, 5] == img[5, 5]


@pytest.mark.parametrize("mode", ["linear", "log", "equalized"])
def test_it_scales_to_unit_range_keeping_nan(mode: str) -> None:
    img = np.array([[0.0, 1.0, 10.0], [100.0, np.nan, 1000.0]])
    s = scale(img, mode)
    assert np.isnan(s[1, 1])
    assert np.nanmin(s) == 0.0 and np.nanmax(s) == 1.0
    fin = s[np.isfinite(s)]
    assert np.all(np.diff(fin[[0, 1, 2, 3, 4]]) > 0)  # order kept
    if mode == "equalized":
        np.testing.assert_allclose(fin, [0, 0.25, 0.5, 0.75, 1.0])


def test_its_equalization_table_ranks_pixels_as_the_equalized_scale_does() -> None:
    rng = np.random.default_rng(5)
    img = np.round(rng.lognormal(1, 1, (30, 40)), 1)
    img[0, :5] = np.nan
    table, distinct = equalization_table(img)
    fin = img[np.isfinite(img)]
    assert distinct == table.size == np.unique(fin).size and np.all(np.diff(table) > 0)
    # entry j sits at rank j: the page's lookup gives display_scale's equalized values
    ranks = np.searchsorted(table, fin)
    np.testing.assert_allclose(
        ranks / (distinct - 1), display_scale(img, -np.inf, np.inf, "equalized")[np.isfinite(img)]
    )


def test_its_equalization_table_thins_many_distinct_values_to_evenly_spaced_ranks() -> None:
    values = np.arange(1001, dtype=np.float64) ** 2
    table, distinct = equalization_table(values, points=11)
    assert distinct == 1001 and table.size == 11
    np.testing.assert_allclose(table, (np.arange(11) * 100.0) ** 2)  # ranks 0, 100, ..., 1000
    assert equalization_table(np.full(4, np.nan))[1] == 0
