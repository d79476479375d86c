from __future__ import annotations

import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ionsieve_core import ml
from ionsieve_core.ml.bundle import DEFAULT_MODEL_PATH
from ionsieve_core.ml.default_score import context_scores
from ionsieve_core.ml.pretraining import synthetic


@pytest.fixture(scope="module")
def datasets() -> dict:
    return synthetic.make_data(
        n_datasets=6, ions=(30, 40), seed=5, size=(40, 90), modes=["blobs", "ring"]
    ).datasets


def test_it_ranks_off_sample_ions_of_datasets_with_background(datasets):
    aucs = []
    for ds in datasets.values():
        assert ds.has_background
        s = ml.default_context_scores(ds.images, ds.tic)
        assert s.shape == (len(ds.labels),) and np.all((s >= 0) & (s <= 1))
        aucs.append(roc_auc_score(ds.labels == 0, s))
    assert min(aucs) >= 0.9, aucs


def test_it_finds_the_sample_area(datasets):
    for ds in datasets.values():
        mask, has_bg = ml.estimate_sample_mask(ds.images, ds.tic)
        assert has_bg
        iou = (mask & ds.tissue).sum() / (mask | ds.tissue).sum()
        assert iou > 0.8


def test_it_reports_no_background_for_a_full_tissue_dataset():
    rng = np.random.default_rng(3)
    for _ in range(3):
        ds = synthetic.make_dataset(rng, 60, 70, n_ions=40, mode="full")
        mask, has_bg = ml.estimate_sample_mask(ds.images, ds.tic)
        assert not has_bg
        assert mask.shape == (60, 70)


def test_it_copes_with_a_missing_tic(datasets):
    ds = next(iter(datasets.values()))
    s = ml.default_context_scores(ds.images, None)
    assert roc_auc_score(ds.labels == 0, s) >= 0.9


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.exists(), reason="the default model is not built yet")
def test_it_ranks_generated_data_with_the_shipped_model(datasets):
    for ds in datasets.values():
        p = ml.default_binary_scores(ds.images, ds.tic)
        assert p.shape == (len(ds.labels), 2)
        np.testing.assert_allclose(p.sum(axis=1), 1)
        assert roc_auc_score(ds.labels == 0, p[:, 0]) >= 0.9
    # without a background the shipped model alone still ranks
    rng = np.random.default_rng(8)
    ds = synthetic.make_dataset(rng, 60, 60, n_ions=40, mode="full")
    p = ml.default_binary_scores(ds.images, ds.tic)
    assert p.shape == (40, 2) and np.isfinite(p).all()


def test_it_falls_back_to_the_context_score_without_a_model(datasets, tmp_path):
    ds = next(iter(datasets.values()))
    p = ml.default_binary_scores(ds.images, ds.tic, model_path=tmp_path / "nope.zip")
    np.testing.assert_allclose(p[:, 0], ml.default_context_scores(ds.images, ds.tic))
    broken = tmp_path / "broken.zip"
    if DEFAULT_MODEL_PATH.exists():
        shutil.copy(DEFAULT_MODEL_PATH, broken)
        broken.write_bytes(broken.read_bytes()[:1000])
        p = ml.default_binary_scores(ds.images, ds.tic, model_path=broken)
        np.testing.assert_allclose(p[:, 0], ml.default_context_scores(ds.images, ds.tic))


def test_it_finds_the_sample_on_a_pooled_grid_for_large_images():
    # 180 px > MASK_GRID: clustering and scores run on 2x2 block means, the mask comes back
    # at full resolution.
    rng = np.random.default_rng(12)
    ds = synthetic.make_dataset(rng, 180, 150, n_ions=40, mode="blobs")
    s, has_bg, mask = context_scores(ds.images, ds.tic)
    assert has_bg and mask.shape == (180, 150)
    assert (mask & ds.tissue).sum() / (mask | ds.tissue).sum() > 0.8
    assert roc_auc_score(ds.labels == 0, s) >= 0.9
