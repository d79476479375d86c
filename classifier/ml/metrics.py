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


def _one(y_true: np.ndarray, prob: np.ndarray, task: str, classes: Sequence[str],
         thresholds: Sequence[float] | None) -> dict:
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
        p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)
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
            name: {"precision": _f(p[i]), "recall": _f(r[i]), "f1": _f(f[i]), "roc_auc": aucs[i],
                   "support": int(s[i])}
            for i, name in enumerate(classes)
        },
        "accuracy": _f(acc),
        "f1_macro": _f(f1_macro),
        "roc_auc": overall_auc,
        "confusion_matrix": cm,
        "classes": list(classes),
        "n": int(len(y)),
    }


def compute_metrics(y_true, prob, task: str, classes: Sequence[str], groups=None,
                    thresholds: Sequence[float] | None = None) -> dict:
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
