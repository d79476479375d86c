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


def _pool_reference(images: np.ndarray, f: int) -> np.ndarray:
    """Block means over f x f px of the whole stack at once, NaN outside the grid and where no
    pixel of a block was acquired (what _pool computed before it read slabs)."""
    k, h, w = images.shape
    hp, wp = -(-h // f) * f, -(-w // f) * f
    a = np.full((k, hp, wp), np.nan, np.float64)
    a[:, :h, :w] = images
    blocks = a.reshape(k, hp // f, f, wp // f, f)
    n = np.isfinite(blocks).sum(axis=(2, 4))
    total = np.where(np.isfinite(blocks), blocks, 0).sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def test_it_pools_a_memory_mapped_stack_slab_by_slab_as_all_at_once(tmp_path, monkeypatch):
    from ionsieve_core.imaging import slabs
    from ionsieve_core.ml.default_score import _pool

    rng = np.random.default_rng(3)
    images = (rng.random((9, 130, 251)) * 100).astype(np.float32)  # f = 3, both sides padded
    images[:, :, :7] = np.nan  # not acquired: a whole column of blocks
    images[:, 39:42, 60:63] = np.nan  # one block with nothing acquired
    images[4, 5, 5] = np.nan  # one image with one more missing pixel
    tic = np.nansum(images, axis=0)
    np.save(tmp_path / "s.npy", images)
    whole, tic_whole, f = _pool(images, tic)
    assert f == 3 and whole.shape == (9, 44, 84) and whole.dtype == np.float32
    np.testing.assert_allclose(whole, _pool_reference(images, 3), rtol=1e-6, equal_nan=True)
    assert np.isnan(whole[:, 13, 20]).all() and np.isnan(whole[:, :, 1]).all()
    np.testing.assert_allclose(tic_whole, _pool_reference(tic[None], 3)[0], rtol=1e-6, equal_nan=True)
    for per_slab in (1, 2, 4):  # slabs of 1, 2 and 4 images, from a memory map
        monkeypatch.setattr(slabs, "SLAB_VALUES", per_slab * 132 * 252)
        pooled, tic_pooled, _ = _pool(np.load(tmp_path / "s.npy", mmap_mode="r"), tic)
        np.testing.assert_array_equal(pooled, whole)
        np.testing.assert_array_equal(tic_pooled, tic_whole)


def test_it_scores_a_memory_mapped_stack_as_the_same_stack_in_memory(tmp_path, monkeypatch):
    from ionsieve_core.imaging import slabs

    rng = np.random.default_rng(21)
    ds = synthetic.make_dataset(rng, 150, 210, n_ions=24, mode="blobs")
    images = ds.images.astype(np.float32)
    np.save(tmp_path / "s.npy", images)
    want, want_emb = ml.default_binary_scores(images, ds.tic, with_embeddings=True)
    monkeypatch.setattr(slabs, "SLAB_VALUES", 5 * 150 * 210)  # slabs of 5 images
    got, emb = ml.default_binary_scores(
        np.load(tmp_path / "s.npy", mmap_mode="r"), ds.tic, with_embeddings=True
    )
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(emb, want_emb)


def test_it_scores_with_the_context_half_in_a_second_thread_as_one_after_the_other():
    from ionsieve_core.ml.bundle import default_score_model
    from ionsieve_core.ml.default_score import blend
    from ionsieve_core.ml.training import predict

    rng = np.random.default_rng(8)
    ds = synthetic.make_dataset(rng, 120, 160, n_ions=30, mode="ring")
    images = ds.images.astype(np.float32)
    bundle = default_score_model()
    ctx, has_bg, _ = context_scores(images, ds.tic)
    pm = predict(bundle, list(images))[:, 0]
    assert has_bg  # so that both halves count
    want = np.clip(blend(pm, ctx, bundle.extra.get("blend")), 0, 1)
    np.testing.assert_array_equal(ml.default_binary_scores(images, ds.tic)[:, 0], want)
