"""Metrics of probabilities against labels, all from sklearn.metrics, JSON-serialisable.

Shape: {"overall": M, "per_fold": [M...], "per_group": {g: M}, "folds": k} where
M = {"per_class": {name: {precision, recall, f1, roc_auc, support}}, "accuracy", "f1_macro",
"roc_auc", "confusion_matrix", "classes", "n"}. ROC AUC is None when undefined.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _auc(y: np.ndarray, s: np.ndarray, **kw) -> float | None:
    y = np.asarray(y)
    if y.ndim == 1 and len(np.unique(y)) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _f(skm.roc_auc_score(y, s, **kw))
    except ValueError:  # a class absent from this subset
        return None


def predict_labels(prob: np.ndarray, task: str, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """Class indices (binary, multiclass) or a 0/1 matrix (multilabel)."""
    prob = np.asarray(prob, dtype=np.float64)
    c = prob.shape[1]
    t = np.asarray(thresholds if thresholds is not None else [0.5] * c, dtype=np.float64)
    if task == "multilabel":
        return (prob >= t[None, :]).astype(int)
    if task == "binary":
        return np.where(prob[:, 0] >= t[0], 0, 1)
    return prob.argmax(axis=1)


def _one(
    y_true: np.ndarray,
    prob: np.ndarray,
    task: str,
    classes: Sequence[str],
    thresholds: Sequence[float] | None,
) -> dict:
    k = len(classes)
    pred = predict_labels(prob, task, thresholds)
    if task == "multilabel":
        y = np.asarray(y_true).astype(int)
        p, r, f, s = skm.precision_recall_fscore_support(y, pred, average=None, zero_division=0)
        aucs = [_auc(y[:, i], prob[:, i]) for i in range(k)]
        valid = [a for a in aucs if a is not None]
        overall_auc = _f(np.mean(valid)) if valid else None
        cm = skm.multilabel_confusion_matrix(y, pred).tolist()
        acc = skm.accuracy_score(y, pred)
        f1_macro = skm.f1_score(y, pred, average="macro", zero_division=0)
    else:
        y = np.asarray(y_true).astype(int)
        labels = list(range(k))
        p, r, f, s = skm.precision_recall_fscore_support(
            y, pred, labels=labels, average=None, zero_division=0
        )
        aucs = [_auc((y == i).astype(int), prob[:, i]) for i in range(k)]
        if task == "binary":
            overall_auc = aucs[0]  # the class galleries sort by
        else:
            overall_auc = _auc(y, prob, multi_class="ovr", labels=labels) if len(np.unique(y)) == k else None
            if overall_auc is None:
                valid = [a for a in aucs if a is not None]
                overall_auc = _f(np.mean(valid)) if valid else None
        cm = skm.confusion_matrix(y, pred, labels=labels).tolist()
        acc = skm.accuracy_score(y, pred)
        f1_macro = skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)
    return {
        "per_class": {
            name: {
                "precision": _f(p[i]),
                "recall": _f(r[i]),
                "f1": _f(f[i]),
                "roc_auc": aucs[i],
                "support": int(s[i]),
            }
            for i, name in enumerate(classes)
        },
        "accuracy": _f(acc),
        "f1_macro": _f(f1_macro),
        "roc_auc": overall_auc,
        "confusion_matrix": cm,
        "classes": list(classes),
        "n": int(len(y)),
    }


def compute_metrics(
    y_true, prob, task: str, classes: Sequence[str], groups=None, thresholds: Sequence[float] | None = None
) -> dict:
    """Overall metrics, plus per_group when groups are given (per_fold is added by train)."""
    prob = np.asarray(prob, dtype=np.float64)
    y_true = np.asarray(y_true)
    out = {"overall": _one(y_true, prob, task, classes, thresholds)}
    if groups is not None:
        groups = np.asarray(groups).astype(str)
        out["per_group"] = {
            str(g): _one(y_true[groups == g], prob[groups == g], task, classes, thresholds)
            for g in np.unique(groups)
        }
    return out


# ---------------------------------------------------------------- measures with intervals
# One "measure" summarises predictions against labels for the review: F1, precision, recall,
# accuracy and ROC AUC, each with a 95% interval, for the first class of binary tasks and
# macro-averaged over the classes otherwise. Point estimates come from sklearn.metrics; the
# intervals are Wilson intervals where the number is a proportion of images (binary precision,
# recall, accuracy, and F1 through the Jaccard index J = TP / (TP + FP + FN), F1 = 2J / (1 + J)),
# and percentile intervals of a bootstrap over images otherwise (macro averages, ROC AUC).

Z95 = 1.959964
N_BOOT = 1000
_BOOT_CHUNK = 100


def decide(prob: np.ndarray, task: str, thresholds: np.ndarray) -> np.ndarray:
    """Like predict_labels, with one row of thresholds per image (out-of-fold thresholds
    differ between folds) or one row for all."""
    prob = np.asarray(prob, dtype=np.float64)
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), prob.shape)
    if task == "multilabel":
        return (prob >= t).astype(int)
    if task == "binary":
        return np.where(prob[:, 0] >= t[:, 0], 0, 1)
    return prob.argmax(axis=1)


def targets(labels: Sequence[str], task: str, classes: Sequence[str]) -> np.ndarray:
    """Class names -> class indices, or a 0/1 matrix for multilabel ('a c' -> [1, 0, 1])."""
    classes = list(classes)
    if task == "multilabel":
        return np.asarray([[c in str(v).split() for c in classes] for v in labels], dtype=int).reshape(
            -1, len(classes)
        )
    return np.asarray([classes.index(v) for v in labels], dtype=int)


def wilson(k: float, n: float, z: float = Z95) -> list[float] | None:
    """Wilson score interval of the proportion k / n (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _f1_wilson(tp: float, relevant: float) -> list[float] | None:
    """F1 interval from the Wilson interval of the Jaccard index TP / (TP + FP + FN), a
    proportion of images, mapped through F1 = 2J / (1 + J) (monotone)."""
    jac = wilson(tp, relevant)
    return [2 * j / (1 + j) for j in jac] if jac else None


def _mean_interval(intervals: list[list[float] | None]) -> list[float] | None:
    defined = [i for i in intervals if i is not None]
    if not defined:
        return None
    return [float(np.mean([i[0] for i in defined])), float(np.mean([i[1] for i in defined]))]


def _indicators(y: np.ndarray, pred: np.ndarray, task: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predicted) as 0/1 matrices with one column per reported class: the first class
    for binary tasks, every class otherwise."""
    if task == "multilabel":
        return np.asarray(y, dtype=int).reshape(-1, k), np.asarray(pred, dtype=int).reshape(-1, k)
    cols = [0] if task == "binary" else list(range(k))
    yy = np.stack([(np.asarray(y) == c) for c in cols], axis=1).astype(int)
    pp = np.stack([(np.asarray(pred) == c) for c in cols], axis=1).astype(int)
    return yy, pp


def _correct(y: np.ndarray, pred: np.ndarray, task: str) -> np.ndarray:
    if task == "multilabel":
        return (np.asarray(y) == np.asarray(pred)).all(axis=1).astype(float)
    return (np.asarray(y) == np.asarray(pred)).astype(float)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def weighted_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC of one class for many weightings at once: w is (B, n) image weights (bootstrap
    counts), y is 0/1 and score the class's probability. Equals sklearn's roc_auc_score with
    sample_weight=w[b] (ties count one half); NaN where a weighting leaves one class only."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(score, kind="stable")
    s = np.asarray(score)[order]
    w = np.asarray(w, dtype=np.float64)[:, order]
    starts = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]  # groups of tied scores
    pos = np.add.reduceat(w * y[order], starts, axis=1)
    neg = np.add.reduceat(w * ~y[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wp, wn = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((wp > 0) & (wn > 0), (pos * (below + 0.5 * neg)).sum(axis=1) / (wp * wn), np.nan)


def _auc_columns(yy: np.ndarray, prob: np.ndarray, task: str) -> list[int]:
    return [0] if task == "binary" else list(range(yy.shape[1]))


def _boot_weights(n: int, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        b = min(_BOOT_CHUNK, n_boot - done)
        # b resamples of n images with replacement, as counts per image (B, n).
        picks = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(picks.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def _boot_stats(
    yy: np.ndarray,
    pp: np.ndarray,
    correct: np.ndarray,
    prob: np.ndarray,
    task: str,
    w: np.ndarray,
    with_auc: bool = True,
) -> dict[str, np.ndarray]:
    """Macro F1 / precision / recall, accuracy and AUC for each row of weights w (B, n)."""
    tp = w @ (yy & pp)
    fp = w @ ((1 - yy) & pp)
    fn = w @ (yy & (1 - pp))
    out = {
        "f1": _nanmean(_ratio(2 * tp, 2 * tp + fp + fn), axis=1),
        "precision": _nanmean(_ratio(tp, tp + fp), axis=1),
        "recall": _nanmean(_ratio(tp, tp + fn), axis=1),
        "accuracy": (w @ correct) / w.sum(axis=1),
    }
    if with_auc:
        aucs = np.stack([weighted_auc(yy[:, i], prob[:, i], w) for i in _auc_columns(yy, prob, task)], axis=1)
        out["auc"] = _nanmean(aucs, axis=1)
    return out


def _resamples(n: int, n_boot: int) -> int:
    """Fewer resamples for many images (about 2 million image draws in all): the interval is
    narrow there and the percentiles settle with a few hundred."""
    return max(200, min(n_boot, 2_000_000 // max(n, 1)))


def _percentile(samples: np.ndarray) -> list[float] | None:
    total = len(samples)
    samples = samples[np.isfinite(samples)]
    if len(samples) < total / 2:  # undefined in most resamples
        return None
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def _point(
    yy: np.ndarray, pp: np.ndarray, y: np.ndarray, pred: np.ndarray, prob: np.ndarray, task: str
) -> dict[str, float | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if yy.shape[1] == 1:  # one 0/1 column: sklearn reads it as a class vector, positive = 1
            p, r, f, _ = skm.precision_recall_fscore_support(
                yy[:, 0], pp[:, 0], average=None, labels=[1], zero_division=np.nan
            )
        else:
            p, r, f, _ = skm.precision_recall_fscore_support(
                yy, pp, average=None, labels=list(range(yy.shape[1])), zero_division=np.nan
            )
        if task != "binary":
            # Classes never labelled nor predicted here have no F1: left out of the average.
            p, r, f = (np.array([_nanmean(a, axis=0)]) for a in (p, r, f))
        aucs = [_auc(yy[:, i], prob[:, i]) for i in _auc_columns(yy, prob, task)]
        defined = [a for a in aucs if a is not None]
        return {
            "f1": _f(f[0]),
            "precision": _f(p[0]),
            "recall": _f(r[0]),
            "accuracy": _f(skm.accuracy_score(y, pred)),
            "auc": _f(np.mean(defined)) if defined else None,
        }


def measure(y, prob, pred, task: str, classes: Sequence[str], n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """{n, f1, f1_ci, precision, recall, accuracy, auc} plus precision_ci, recall_ci,
    accuracy_ci, auc_ci and per_class F1 (None where undefined)."""
    k = len(classes)
    y, pred = np.asarray(y), np.asarray(pred)
    prob = np.asarray(prob, dtype=np.float64).reshape(-1, k)
    n = int(len(y))
    out: dict = {
        "n": n,
        "f1": None,
        "f1_ci": None,
        "precision": None,
        "recall": None,
        "accuracy": None,
        "auc": None,
        "precision_ci": None,
        "recall_ci": None,
        "accuracy_ci": None,
        "auc_ci": None,
        "per_class": {},
    }
    if n == 0:
        return out
    yy, pp = _indicators(y, pred, task, k)
    correct = _correct(y, pred, task)
    prob_cols = prob if task != "binary" else prob[:, :1]
    out.update(_point(yy, pp, y, pred, prob_cols, task))
    boot = [
        _boot_stats(yy, pp, correct, prob_cols, task, w)
        for w in _boot_weights(n, _resamples(n, n_boot), seed)
    ]
    samples = {key: np.concatenate([b[key] for b in boot]) for key in boot[0]}
    out["auc_ci"] = _percentile(samples["auc"]) if out["auc"] is not None else None
    out["accuracy_ci"] = wilson(float(correct.sum()), n)
    if task == "binary":
        tp, fp, fn = (int(v) for v in ((yy & pp).sum(), ((1 - yy) & pp).sum(), (yy & (1 - pp)).sum()))
        out["f1_ci"] = _f1_wilson(tp, tp + fp + fn)
        out["precision_ci"] = wilson(tp, tp + fp)
        out["recall_ci"] = wilson(tp, tp + fn)
    else:
        # The bootstrap collapses to a point when no error is seen (12 perfect labels would read
        # "1.00 (1.00-1.00)"): widen it to the average of the per-class Wilson intervals.
        tp, fp, fn = ((yy & pp).sum(axis=0), ((1 - yy) & pp).sum(axis=0), (yy & (1 - pp)).sum(axis=0))
        wide = {
            "f1": _mean_interval([_f1_wilson(a, a + b + c) for a, b, c in zip(tp, fp, fn, strict=True)]),
            "precision": _mean_interval([wilson(a, a + b) for a, b in zip(tp, fp, strict=True)]),
            "recall": _mean_interval([wilson(a, a + c) for a, c in zip(tp, fn, strict=True)]),
        }
        for key in ("f1", "precision", "recall"):
            boot = _percentile(samples[key]) if out[key] is not None else None
            if boot is not None and wide[key] is not None:
                boot = [min(boot[0], wide[key][0]), max(boot[1], wide[key][1])]
            out[f"{key}_ci"] = boot
    for key in ("f1_ci", "precision_ci", "recall_ci", "accuracy_ci", "auc_ci"):
        if out[key] is not None:
            out[key] = [_f(v) for v in out[key]]
    yk, pk = _indicators(y, pred, "multiclass" if task == "binary" else task, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, f1s, support = skm.precision_recall_fscore_support(
            yk, pk, average=None, labels=list(range(k)), zero_division=np.nan
        )
    out["per_class"] = {c: {"f1": _f(f1s[i]), "n": int(support[i])} for i, c in enumerate(classes)}
    return out


def paired_difference(
    y, prob_a, pred_a, prob_b, pred_b, task: str, classes: Sequence[str], n_boot: int = N_BOOT, seed: int = 0
) -> dict:
    """A minus B on the same images: F1 and ROC AUC differences with bootstrap intervals
    (both scored on the same resampled images each time)."""
    k = len(classes)
    y = np.asarray(y)
    n = int(len(y))
    out: dict = {"n": n, "f1_diff": None, "f1_diff_ci": None, "auc_diff": None, "auc_diff_ci": None}
    if n == 0:
        return out
    sides = []
    for prob, pred in ((prob_a, pred_a), (prob_b, pred_b)):
        prob = np.asarray(prob, dtype=np.float64).reshape(-1, k)
        pred = np.asarray(pred)
        yy, pp = _indicators(y, pred, task, k)
        cols = prob if task != "binary" else prob[:, :1]
        sides.append((yy, pp, _correct(y, pred, task), cols, _point(yy, pp, y, pred, cols, task)))
    diffs: dict[str, list[np.ndarray]] = {"f1": [], "auc": []}
    for w in _boot_weights(n, _resamples(n, n_boot), seed):
        a, b = (_boot_stats(*s[:4], task, w) for s in sides)
        for key in diffs:
            diffs[key].append(a[key] - b[key])
    for key in diffs:
        pa, pb = sides[0][4][key], sides[1][4][key]
        if pa is not None and pb is not None:
            out[f"{key}_diff"] = _f(pa - pb)
            ci = _percentile(np.concatenate(diffs[key]))
            out[f"{key}_diff_ci"] = [_f(v) for v in ci] if ci else None
    return out
