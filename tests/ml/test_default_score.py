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


def test_it_scores_a_new_dataset_without_importing_scikit_learn_or_scipy():
    # The first scoring of every import paid ~2 s for these imports (issue 13's 12x target).
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from ionsieve_core import ml\n"
        "rng = np.random.default_rng(0)\n"
        "images = rng.random((12, 30, 40)).astype(np.float32)\n"
        "images[:, :, :10] *= 0.01\n"
        "p = ml.default_binary_scores(images, images.sum(axis=0), with_embeddings=True)[0]\n"
        "assert p.shape == (12, 2)\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'skimage', 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_it_clusters_like_scikit_learn(datasets):
    # The numpy k-means and Gaussian of the sample mask give scikit-learn's / scikit-image's answer.
    from skimage.filters import gaussian as sk_gaussian
    from sklearn.cluster import KMeans

    from ionsieve_core.ml.default_score import gaussian, kmeans2, nearest

    rng = np.random.default_rng(4)
    grid = (rng.random((37, 53)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(gaussian(grid, 1.0), sk_gaussian(grid, 1.0), atol=1e-6)
    for ds in datasets.values():
        x = np.log1p(20 * np.nan_to_num(ds.images.reshape(len(ds.images), -1).T[:, ::3]))
        centres, lab = kmeans2(x, seed=0)
        ref = KMeans(n_clusters=2, n_init=4, random_state=0).fit(x).labels_
        agree = max(np.mean(lab == ref), np.mean(lab != ref))  # cluster numbers may be swapped
        assert agree >= 0.99
        np.testing.assert_array_equal(nearest(x, centres), lab)


def test_it_clusters_deterministically():
    from ionsieve_core.ml.default_score import kmeans2

    x = np.random.default_rng(1).normal(size=(500, 4))
    x[:200] += 3
    a, b = kmeans2(x, seed=0), kmeans2(x, seed=0)
    np.testing.assert_array_equal(a[1], b[1])
    assert {int(a[1][:200].mean().round()), int(a[1][200:].mean().round())} == {0, 1}
