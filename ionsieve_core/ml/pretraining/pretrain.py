"""Train the shipped default off-sample model on generated data.

    python -m ionsieve_core.ml.pretraining.pretrain --out ionsieve_core/ml/default_model/compact_offsample.zip

Datasets are split by group: 80 % train, 10 % calibration (Platt, and the weights that blend
the model with the context score), 10 % test. Generated held-out data drawn like the training
data is easy, so a second test set of datasets generated with synthetic.make_data(hard=True)
(more noise, leaks both ways, stripes, baselines; another seed) is scored as well. Neither
test set is used to choose anything.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from ionsieve_core.ml.bundle import ModelBundle, load_bundle, save_bundle
from ionsieve_core.ml.calibration import apply_calibration, best_f1_threshold
from ionsieve_core.ml.default_score import _logit, blend, context_scores
from ionsieve_core.ml.params import TrainParams
from ionsieve_core.ml.preprocess import prepare
from ionsieve_core.ml.pretraining import synthetic
from ionsieve_core.ml.training import fit_models, raw_predict


def _per_dataset_auc(score: np.ndarray, is_off: np.ndarray, groups: np.ndarray) -> float:
    aucs = [
        roc_auc_score(is_off[groups == g], score[groups == g])
        for g in np.unique(groups)
        if 0 < is_off[groups == g].sum() < (groups == g).sum()
    ]
    return float(np.mean(aucs)) if aucs else float("nan")


def _context(data: synthetic.SyntheticData, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Context score and estimated has-background per image, one dataset at a time."""
    ctx = np.zeros(len(groups))
    has_bg = np.zeros(len(groups), bool)
    for g in np.unique(groups):
        ds = data.datasets[g]
        s, hb, _ = context_scores(ds.images, ds.tic)
        ctx[groups == g] = s
        has_bg[groups == g] = hb
    return ctx, has_bg


def _blended(
    p_model: np.ndarray, ctx: np.ndarray, has_bg: np.ndarray, groups: np.ndarray, how: dict
) -> np.ndarray:
    # Exactly what default_binary_scores does: blend only where a background was found.
    out = p_model.copy()
    for g in np.unique(groups[has_bg]):
        sel = groups == g
        out[sel] = blend(p_model[sel], ctx[sel], how)
    return out


def _scores(name: str, p: np.ndarray, is_off: np.ndarray, groups: np.ndarray) -> dict:
    return {
        f"{name}_auc": round(roc_auc_score(is_off, p), 4),
        f"{name}_auc_per_dataset": round(_per_dataset_auc(p, is_off, groups), 4),
        f"{name}_f1_off_at_0.5": round(f1_score(is_off, p >= 0.5), 4),
    }


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="ionsieve_core/ml/default_model/compact_offsample.zip")
    ap.add_argument("--datasets", type=int, default=180)
    ap.add_argument("--hard-datasets", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    return ap.parse_args(argv)


def _split(groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, calibration, test) masks over the images, whole datasets at a time."""
    names = np.unique(groups)
    rng = np.random.default_rng(seed)
    held = rng.permutation(names)[: max(4, len(names) // 5)]
    cal_groups, test_groups = set(held[: len(held) // 2]), set(held[len(held) // 2 :])
    is_cal = np.isin(groups, list(cal_groups))
    is_test = np.isin(groups, list(test_groups))
    return ~(is_cal | is_test), is_cal, is_test


def _calibrate(
    models: list, x: np.ndarray, data: synthetic.SyntheticData, is_cal: np.ndarray
) -> tuple[dict, dict, float]:
    """Platt calibration (2 parameters, keeps the shipped model's scores smooth), the blend with
    the context score, and the best-F1 threshold, all fitted on the calibration datasets."""
    y, groups = data.labels, data.groups
    raw_cal = raw_predict(models, x[is_cal])[:, 0]
    off_cal = (y[is_cal] == 0).astype(int)
    lr = LogisticRegression().fit(_logit(raw_cal)[:, None], off_cal)
    cal = {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    p_cal = apply_calibration(raw_cal, cal)
    ctx_cal, bg_cal = _context(data, groups[is_cal])
    feats = np.stack([_logit(p_cal), _logit(ctx_cal)], axis=1)
    lr = LogisticRegression().fit(feats[bg_cal], off_cal[bg_cal])
    logistic = {
        "method": "logistic",
        "a": float(lr.coef_[0, 0]),
        "b": float(lr.coef_[0, 1]),
        "c": float(lr.intercept_[0]),
    }
    # Both weights must be positive: a blend that inverts either score is a bug, not a fit.
    how = logistic if logistic["a"] > 0 and logistic["b"] > 0 else {"method": "rank"}
    return cal, how, best_f1_threshold(p_cal, off_cal)


def _test_scores(models: list, xs, ys, gs, src: synthetic.SyntheticData, cal: dict, how: dict) -> dict:
    pm = apply_calibration(raw_predict(models, xs)[:, 0], cal)
    is_off = (ys == 0).astype(int)
    ctx, hb = _context(src, gs)
    r = {"has_background_share": round(float(hb.mean()), 3)}
    r |= _scores("model", pm, is_off, gs)
    r["context_auc_per_dataset_with_bg"] = round(_per_dataset_auc(ctx[hb], is_off[hb], gs[hb]), 4)
    r |= _scores("blend", _blended(pm, ctx, hb, gs, how), is_off, gs)
    r |= _scores("rank_blend", _blended(pm, ctx, hb, gs, {"method": "rank"}), is_off, gs)
    r["model_p_off_quantiles_1_50_99"] = [round(float(q), 4) for q in np.quantile(pm, [0.01, 0.5, 0.99])]
    return r


def main(argv: list[str] | None = None) -> dict:
    a = _arguments(argv)
    t0 = time.time()
    size = (40, 250)  # realistic MSI grids
    data = synthetic.make_data(n_datasets=a.datasets, ions=(30, 70), seed=a.seed, size=size)
    hard = synthetic.make_data(
        n_datasets=a.hard_datasets, ions=(30, 70), seed=a.seed + 1000, size=size, hard=True
    )
    groups = data.groups
    names = np.unique(groups)
    tr, is_cal, is_test = _split(groups, a.seed)
    params = TrainParams(
        arch="compact", epochs=a.epochs, seed=a.seed, ensemble=a.ensemble, label_smoothing=a.label_smoothing
    )
    x = prepare(data.images, params.input_size, 1)
    xh = prepare(hard.images, params.input_size, 1)
    y = data.labels
    print(
        f"{len(y)} images from {len(names)} generated datasets ({(y == 0).mean():.0%} off); "
        f"{is_cal.sum()} calibration / {is_test.sum()} test images held out; {len(xh)} hard test images; "
        f"made in {time.time() - t0:.0f} s",
        flush=True,
    )
    t1 = time.time()

    def on_epoch(member: int, epoch: int, epochs: int) -> None:
        print(f"  model {member + 1} epoch {epoch}/{epochs}  {time.time() - t1:.0f} s", flush=True)

    models = fit_models(x[tr], y[tr], "binary", 2, params, a.seed, on_epoch)
    train_s = time.time() - t1
    cal, how, t = _calibrate(models, x, data, is_cal)

    report: dict = {
        "images_train": int(tr.sum()),
        "images_calibration": int(is_cal.sum()),
        "images_test": int(is_test.sum()),
        "images_hard_test": len(xh),
        "datasets": len(names),
        "hard_datasets": a.hard_datasets,
        "epochs": a.epochs,
        "ensemble": a.ensemble,
        "label_smoothing": a.label_smoothing,
        "train_seconds": round(train_s, 1),
        "calibration": cal,
        "blend": how,
    }
    for name, xs, ys, gs, src in (
        ("test", x[is_test], y[is_test], groups[is_test], data),
        ("hard", xh, hard.labels, hard.groups, hard),
    ):
        report[name] = _test_scores(models, xs, ys, gs, src, cal, how)
        print(name, json.dumps(report[name]), flush=True)
    bundle = ModelBundle(
        task="binary",
        classes=list(synthetic.CLASSES),
        params=params,
        thresholds=[t, 1 - t],
        models=models,
        input_shape=tuple(int(v) for v in x.shape[1:]),
        channels=1,
        calibration=cal,
        metrics={"held_out": report},
        extra={"blend": how, "calibration": "platt"},
    )
    save_bundle(bundle, a.out)
    # Its numpy plan beside it: the default score then runs without TensorFlow (fastpredict.py).
    from ionsieve_core.ml.fastpredict import export_plan

    export_plan(load_bundle(a.out), a.out)
    report["seconds_total"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
