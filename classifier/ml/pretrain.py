"""Train the shipped default off-sample model on generated data.

    python -m classifier.ml.pretrain --out classifier/ml/default_model/compact_offsample.zip

Datasets are split by group (80 % train, 20 % held out); the compact CNN is trained on the
first part; on the held-out datasets we report ROC AUC / F1, fit the calibration (Platt) and
choose how default_binary_scores blends the model with the context score.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from classifier.ml import synthetic
from classifier.ml.bundle import ModelBundle, save_bundle
from classifier.ml.calibration import apply_calibration, best_f1_threshold, fit_calibration
from classifier.ml.coldstart import _logit, blend, context_scores
from classifier.ml.params import TrainParams
from classifier.ml.preprocess import prepare
from classifier.ml.training import fit_models, raw_predict


def _per_dataset_auc(score: np.ndarray, is_off: np.ndarray, groups: np.ndarray) -> float:
    aucs = [roc_auc_score(is_off[groups == g], score[groups == g]) for g in np.unique(groups)
            if 0 < is_off[groups == g].sum() < (groups == g).sum()]
    return float(np.mean(aucs)) if aucs else float("nan")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="classifier/ml/default_model/compact_offsample.zip")
    ap.add_argument("--datasets", type=int, default=150)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    t0 = time.time()
    data = synthetic.make_data(n_datasets=a.datasets, ions=(30, 70), seed=a.seed)
    groups = data.groups
    names = np.unique(groups)
    rng = np.random.default_rng(a.seed)
    held = set(rng.choice(names, size=max(2, len(names) // 5), replace=False))
    va = np.array([g in held for g in groups])
    params = TrainParams(arch="compact", epochs=a.epochs, seed=a.seed)
    x = prepare(data.images, params.input_size, 1)
    y = data.labels
    print(f"{len(y)} images from {len(names)} generated datasets ({(y == 0).mean():.0%} off); "
          f"{va.sum()} images of {len(held)} datasets held out; prepared in {time.time() - t0:.0f} s", flush=True)
    t1 = time.time()

    def on_epoch(member: int, epoch: int, epochs: int) -> None:
        print(f"  epoch {epoch}/{epochs}  {time.time() - t1:.0f} s", flush=True)

    models = fit_models(x[~va], y[~va], "binary", 2, params, a.seed, on_epoch)
    train_s = time.time() - t1
    raw = raw_predict(models, x[va])[:, 0]
    is_off = (y[va] == 0).astype(int)
    cal = fit_calibration(raw, is_off)
    cal_method = "platt"
    if cal and cal["method"] != "platt":  # Platt keeps the shipped model's scores smooth
        lr = LogisticRegression().fit(_logit(raw)[:, None], is_off)
        cal = {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    p_model = apply_calibration(raw, cal)
    g_va = groups[va]

    # Context score per held-out dataset, then the two ways of combining.
    ctx = np.zeros(va.sum())
    has_bg = np.zeros(va.sum(), bool)
    for g in np.unique(g_va):
        ds = data.datasets[g]
        s, hb, _ = context_scores(ds.images, ds.tic)
        ctx[g_va == g] = s
        has_bg[g_va == g] = hb
    feats = np.stack([_logit(p_model), _logit(ctx)], axis=1)
    lr = LogisticRegression().fit(feats[has_bg], is_off[has_bg])
    logistic = {"method": "logistic", "a": float(lr.coef_[0, 0]), "b": float(lr.coef_[0, 1]),
                "c": float(lr.intercept_[0])}
    rank = {"method": "rank"}
    combos = {}
    for name, how in (("logistic", logistic), ("rank", rank)):
        out = p_model.copy()
        for g in np.unique(g_va[has_bg]):
            sel = g_va == g
            out[sel] = blend(p_model[sel], ctx[sel], how)
        combos[name] = out
    report = {
        "images_train": int((~va).sum()), "images_held_out": int(va.sum()), "datasets": len(names),
        "held_out_datasets": len(held), "epochs": a.epochs, "train_seconds": round(train_s, 1),
        "model_auc": round(roc_auc_score(is_off, p_model), 4),
        "model_auc_per_dataset": round(_per_dataset_auc(p_model, is_off, g_va), 4),
        "context_auc_per_dataset_with_bg": round(_per_dataset_auc(ctx[has_bg], is_off[has_bg], g_va[has_bg]), 4),
    }
    t = best_f1_threshold(p_model, is_off)
    report["model_f1_off"] = round(f1_score(is_off, p_model >= t), 4)
    for name, s in combos.items():
        report[f"{name}_auc_per_dataset"] = round(_per_dataset_auc(s, is_off, g_va), 4)
        report[f"{name}_auc"] = round(roc_auc_score(is_off, s), 4)
    best = max(("logistic", "rank"), key=lambda n: (report[f"{n}_auc_per_dataset"], n == "logistic"))
    how = logistic if best == "logistic" else rank
    report["blend"] = best
    final = combos[best]
    report["blend_f1_off_at_0.5"] = round(f1_score(is_off, final >= 0.5), 4)
    bundle = ModelBundle(
        task="binary", classes=list(synthetic.CLASSES), params=params, thresholds=[t, 1 - t], models=models,
        input_shape=tuple(int(v) for v in x.shape[1:]), channels=1, calibration=cal,
        metrics={"held_out": report}, extra={"blend": how, "calibration": cal_method},
    )
    save_bundle(bundle, a.out)
    report["seconds_total"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
