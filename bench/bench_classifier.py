"""Classifier benchmark: prediction / training throughput, context channel, default scorer.

    .venv/bin/python bench/bench_classifier.py [--quick]

1. predict: images/s of ml.predict on raw variable-size float arrays (NaN outside the
   acquisition, sizes varying by a few px within a dataset), preprocessing included; target
   >= 2,000 images/s on 2 CPU cores for the compact model at 56x56.
2. train: images/s per epoch (compact, 56x56, augmentation on) and the extrapolated time to
   train on 20,000 labelled images (5-fold CV + final model, 15 epochs each).
3. context: compact with vs without the TIC channel on generated data, held-out grouped
   ROC AUC / F1 (train on some datasets, test on others).
4. default scorer: time of default_binary_scores on 500 ions x 200x200 px and its ROC AUC on
   that generated dataset. Figures on real images are bench/bench_real.py's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sklearn.metrics import f1_score, roc_auc_score  # noqa: E402

from ionsieve_core import ml  # noqa: E402
from ionsieve_core.ml.bundle import DEFAULT_MODEL_PATH  # noqa: E402
from ionsieve_core.ml.preprocess import prepare  # noqa: E402
from ionsieve_core.ml.pretraining import synthetic  # noqa: E402
from ionsieve_core.ml.training import fit_models, raw_predict  # noqa: E402


def raw_images(n_datasets: int, ions: int, lo: int, hi: int, seed: int = 0) -> list[np.ndarray]:
    """Cheap raw arrays shaped like real ones (generation is not what we time)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_datasets):
        h, w = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
        base = rng.gamma(1.0, 100.0, size=(ions, h, w)).astype(np.float32)
        base[:, :, : w // 10] = np.nan  # not acquired
        for i in range(ions):
            a = base[i]
            if rng.random() < 0.1:  # a few px smaller, as cropped images in one dataset are
                a = a[: h - int(rng.integers(1, 4)), : w - int(rng.integers(1, 4))]
            out.append(a)
    return out


def old_raw_predict(models: list, x: np.ndarray, infer) -> np.ndarray:
    """The previous model path: XLA graph calling the Keras models, padded chunks of 256."""
    out = []
    for start in range(0, len(x), 256):
        chunk = x[start : start + 256]
        n = len(chunk)
        if n < 256:
            chunk = np.concatenate([chunk, np.zeros((256 - n, *chunk.shape[1:]), chunk.dtype)])
        out.append(infer(chunk).numpy()[:n])
    return np.concatenate(out)


def bench_predict(bundle, quick: bool) -> dict:
    import tensorflow as tf

    n_ds = 4 if quick else 8
    imgs = raw_images(n_ds, 500, 90, 160)
    ml.predict(bundle, imgs[:1100])  # trace, warm up
    infer = bundle._infer
    models = bundle.models
    old_infer = tf.function(
        lambda a: tf.add_n([m(a, training=False) for m in models]) / len(models), jit_compile=True
    )
    old_raw_predict(models, prepare(imgs[:300], bundle.input_shape[0], 1), old_infer)  # compile
    res: dict = {"n": len(imgs), "mean_px": float(np.mean([a.size for a in imgs]))}
    for _rep in range(2):  # interleaved, twice: the box is shared, compare within one run
        t = time.perf_counter()
        p = ml.predict(bundle, imgs)
        res.setdefault("new", []).append(time.perf_counter() - t)
        # The previous predict: prepare everything, then the XLA model path, serially.
        t = time.perf_counter()
        x = prepare(imgs, bundle.input_shape[0], 1)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        p_old = old_raw_predict(models, x, old_infer)
        old_model = time.perf_counter() - t
        t = time.perf_counter()
        raw_predict(models, x, infer=infer)
        res.setdefault("model", []).append(time.perf_counter() - t)
        res.setdefault("old", []).append(prep + old_model)
        res.setdefault("prep", []).append(prep)
        res.setdefault("old_model", []).append(old_model)
    assert p.shape == (len(imgs), 2)
    res["max_diff_vs_old"] = float(np.abs(raw_predict(models, x, infer=infer) - p_old).max())
    best = {k: min(v) for k, v in res.items() if isinstance(v, list)}
    return res | {
        "ips": len(imgs) / best["new"],
        "old_ips": len(imgs) / best["old"],
        "prep_ips": len(imgs) / best["prep"],
        "model_ips": len(imgs) / best["model"],
        "old_model_ips": len(imgs) / best["old_model"],
    }


def bench_train(quick: bool) -> dict:
    n = 1024 if quick else 3072
    data = synthetic.make_data(n_datasets=n // 40, ions=40, seed=3, size=(40, 120))
    x = prepare(data.images, 56, 1)
    y = data.labels
    params = ml.TrainParams(epochs=1)
    times = []
    for rep in range(2):  # the first includes graph tracing
        t = time.perf_counter()
        fit_models(x, y, "binary", 2, params, seed=rep)
        times.append(time.perf_counter() - t)
    ips = len(x) / times[1]
    epochs = ml.TrainParams().epochs
    runs = ml.TrainParams().folds + 1
    per_run = 20000 * epochs / ips
    return {
        "n": len(x),
        "ips": ips,
        "first_fit_s": times[0],
        "epochs": epochs,
        "runs": runs,
        "final_only_min": per_run / 60,
        "with_cv_min": per_run * runs / 60 + 20000 / 2000 / 60,
    }


def bench_context(quick: bool) -> dict:
    out: dict[str, list] = {"without": [], "with": []}
    seeds = [0] if quick else [0, 1]
    for seed in seeds:
        data = synthetic.make_data(n_datasets=30, ions=(30, 50), seed=100 + seed, size=(40, 120))
        names = np.unique(data.groups)
        test = np.isin(data.groups, names[: len(names) // 3])
        ctx = data.contexts()
        y = data.labels
        for name, use in (("without", False), ("with", True)):
            params = ml.TrainParams(epochs=4 if quick else 8, context=use, seed=seed)
            x = prepare(data.images, 56, 1, ctx if use else None)
            models = fit_models(x[~test], y[~test], "binary", 2, params, seed=seed)
            p0 = raw_predict(models, x[test])[:, 0]
            is_off = y[test] == 0
            out[name].append((roc_auc_score(is_off, p0), f1_score(is_off, p0 >= 0.5)))
    return {k: np.mean(v, axis=0) for k, v in out.items()} | {
        "train_images": int((~test).sum()),
        "test_images": int(test.sum()),
    }


def bench_default(quick: bool) -> dict:
    rng = np.random.default_rng(4)
    ds = synthetic.make_dataset(rng, 200, 200, n_ions=100 if quick else 500, mode="blobs")
    ml.default_binary_scores(ds.images[:50], ds.tic)  # load the model, compile
    ml.default_binary_scores(ds.images[:300], ds.tic)
    t = time.perf_counter()
    p = ml.default_binary_scores(ds.images, ds.tic)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    cold = ml.default_context_scores(ds.images, ds.tic)
    dt_cold = time.perf_counter() - t
    res = {
        "ions": len(ds.labels),
        "seconds": dt,
        "cold_seconds": dt_cold,
        "auc": roc_auc_score(ds.labels == 0, p[:, 0]),
        "cold_auc": roc_auc_score(ds.labels == 0, cold),
    }
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    bundle = ml.load_bundle(DEFAULT_MODEL_PATH)
    if bundle is None:  # an untrained compact model is as fast as a trained one
        import keras

        from ionsieve_core.ml.bundle import ModelBundle

        bundle = ModelBundle(
            "binary",
            ["off", "on"],
            ml.TrainParams(),
            [0.5, 0.5],
            [ml.make_model((56, 56, 1), 2)],
            (56, 56, 1),
        )
        keras.utils.set_random_seed(0)
    r = bench_predict(bundle, a.quick)
    print(f"\n1. predict ({r['n']} raw images, mean {r['mean_px']:.0f} px, compact 56x56; best of 2)")
    print(f"   end to end            {r['ips']:8.0f} images/s   (target >= 2,000: {r['ips'] / 2000:.2f}x)")
    print(
        f"   previous path         {r['old_ips']:8.0f} images/s   (new / previous: {r['ips'] / r['old_ips']:.2f}x)"
    )
    print(f"   preprocessing only    {r['prep_ips']:8.0f} images/s")
    print(
        f"   model only            {r['model_ips']:8.0f} images/s   (previous model path "
        f"{r['old_model_ips']:.0f}/s: {r['model_ips'] / r['old_model_ips']:.2f}x; max |diff| "
        f"{r['max_diff_vs_old']:.1e})"
    )
    t = bench_train(a.quick)
    print(f"\n2. train (compact 56x56, {t['n']} images, batch 64, augmentation on)")
    print(f"   {t['ips']:.0f} images/s per epoch (first fit incl. tracing {t['first_fit_s']:.1f} s)")
    print(
        f"   20,000 images x {t['epochs']} epochs: final model {t['final_only_min']:.0f} min; "
        f"with 5-fold CV ({t['runs']} trainings) {t['with_cv_min']:.0f} min"
    )
    c = bench_context(a.quick)
    print(
        f"\n3. context channel (generated, {c['train_images']} train / {c['test_images']} held-out images, "
        "grouped)"
    )
    for k in ("without", "with"):
        print(f"   {k:8s} context: ROC AUC {c[k][0]:.3f}  F1(off) {c[k][1]:.3f}")
    win = "with" if c["with"][0] > c["without"][0] else "without"
    print(f"   -> {win} context ranks better (AUC ratio with/without {c['with'][0] / c['without'][0]:.3f})")
    d = bench_default(a.quick)
    print(
        f"\n4. default scorer on {d['ions']} ions x 200x200 px: {d['seconds']:.2f} s "
        f"(context score alone {d['cold_seconds']:.2f} s); generated AUC {d['auc']:.3f} "
        f"(context alone {d['cold_auc']:.3f})"
    )
    print("   (figures on real images: bench/bench_real.py)")


if __name__ == "__main__":
    main()
