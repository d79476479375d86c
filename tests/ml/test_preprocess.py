from __future__ import annotations

import numpy as np

from ionsieve_core.ml.preprocess import clip_scale, prepare


def test_it_prepares_variable_sizes_with_nan_into_one_batch():
    rng = np.random.default_rng(0)
    imgs = [rng.random((30, 45)).astype(np.float32), rng.random((31, 44)), rng.random((100, 20)) * 1e6]
    imgs[0][:5] = np.nan
    x = prepare(imgs, 24)
    assert x.shape == (3, 24, 24, 1) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


def test_it_keeps_the_aspect_ratio_by_padding():
    img = np.ones((20, 80), np.float32)
    x = prepare([img], 40)[0, :, :, 0]
    assert x[20, 20] > 0.9  # the middle row is image
    assert x[0, 20] == 0 and x[-1, 20] == 0  # top and bottom are padding


def test_it_clips_hotspots_at_the_99th_percentile():
    img = np.ones((50, 50), np.float32)
    img[3, 3] = 1000.0  # one hot pixel must not squash everything else to ~0
    out = clip_scale(img[None, :, :, None])[0, :, :, 0]
    assert out.max() == 1.0 and out[10, 10] == 1.0


def test_it_adds_the_context_as_a_channel_and_reuses_shared_contexts():
    rng = np.random.default_rng(1)
    tic = rng.random((40, 40))
    imgs = [rng.random((40, 40)) for _ in range(4)]
    x = prepare(imgs, 16, contexts=[tic[:40, :40] for _ in imgs])
    assert x.shape == (4, 16, 16, 2)
    assert np.allclose(x[0, :, :, 1], x[3, :, :, 1])


def test_it_reconciles_channel_counts():
    rng = np.random.default_rng(2)
    x = prepare([rng.random((20, 20, 3)), rng.random((20, 20))], 16, channels=3)
    assert x.shape == (2, 16, 16, 3)


def test_it_prepares_slab_by_slab_as_all_at_once(monkeypatch):
    from ionsieve_core.imaging import slabs

    rng = np.random.default_rng(4)
    imgs = [(rng.random((60, 90)) * rng.random() * 1e4).astype(np.float32) for _ in range(11)]
    imgs += [rng.random((33, 20)).astype(np.float32) for _ in range(3)]  # a second shape
    imgs[2][:, :10] = np.nan
    whole = prepare(imgs, 28)
    monkeypatch.setattr(slabs, "SLAB_VALUES", 3 * 60 * 90)  # 3 images of 60 x 90 per slab
    np.testing.assert_array_equal(prepare(imgs, 28), whole)
    monkeypatch.setattr(slabs, "SLAB_VALUES", 1)  # one image per slab
    np.testing.assert_array_equal(prepare(imgs, 28), whole)
