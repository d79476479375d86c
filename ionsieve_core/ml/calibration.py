"""Binary calibration on out-of-fold probabilities, and decision thresholds.

CNN probabilities trained with class weights are badly calibrated (the METASPACE model's
were); a monotone map fitted on out-of-fold predictions fixes that without touching the
ranking. Parameters are plain JSON so the bundle stays readable without pickles.
"""

from __future__ import annotations

import numpy as np

# Isotonic needs enough points per class to not overfit; below this Platt (2 parameters).
MIN_PER_CLASS_ISOTONIC = 30
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_calibration(p0: np.ndarray, is0: np.ndarray) -> dict | None:
    """A JSON map for p(class 0), or None when both classes are not present."""
    # scikit-learn (and SciPy, ~2 s) only here: applying a calibration, as every scoring does, needs numpy.
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    p0 = np.asarray(p0, dtype=np.float64)
    is0 = np.asarray(is0).astype(int)
    pos, neg = int(is0.sum()), int(len(is0) - is0.sum())
    if min(pos, neg) < 2:
        return None
    if min(pos, neg) >= MIN_PER_CLASS_ISOTONIC:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p0, is0)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    lr = LogisticRegression(C=1.0).fit(_logit(p0)[:, None], is0)
    return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def apply_calibration(p0: np.ndarray, cal: dict | None) -> np.ndarray:
    p0 = np.asarray(p0, dtype=np.float64)
    if not cal:
        return p0
    if cal.get("method") == "isotonic":
        q = np.interp(p0, np.asarray(cal["x"]), np.asarray(cal["y"]))
        # Isotonic maps ranges to one value; a tiny monotone term keeps the gallery's order.
        return np.clip((q + _EPS * p0) / (1 + _EPS), 0.0, 1.0)
    if cal.get("method") == "platt":
        return 1.0 / (1.0 + np.exp(-(cal["a"] * _logit(p0) + cal["b"])))
    return p0


def best_f1_threshold(score: np.ndarray, positive: np.ndarray) -> float:
    """The threshold on score maximising F1 of the positive class (0.5 when undefined)."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive).astype(bool)
    if positive.sum() == 0 or positive.all():
        return 0.5
    order = np.argsort(-score, kind="stable")
    s, y = score[order], positive[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    f1 = 2 * tp / (tp + fp + positive.sum())
    # Only cut between distinct scores; take the midpoint to the next score down.
    last = np.r_[s[1:] != s[:-1], True]
    i = int(np.argmax(np.where(last, f1, -1)))
    nxt = s[i + 1] if i + 1 < len(s) else s[i] - 1e-3
    return float(np.clip((s[i] + nxt) / 2, 1e-4, 1 - 1e-4))


def cross_fitted(
    task: str,
    raw: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    calibrate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out probabilities, decision thresholds and fold of every image.

    `raw` holds scores that never saw the image's group (out-of-fold model outputs, or the
    default score). The calibration and thresholds applied to the images of a fold are fitted
    on the other folds only, so no label of a held-out group shapes its own predictions.
    Returns (probabilities (n, k), thresholds (n, k), fold index (n,))."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y)
    n, k = raw.shape
    probs = raw.copy()
    thresholds = np.full((n, k), 0.5)
    fold_of = np.full(n, -1, dtype=int)
    for f, (tr, va) in enumerate(folds):
        fold_of[va] = f
        if task == "binary":
            is0 = y.astype(int) == 0
            cal = fit_calibration(raw[tr, 0], is0[tr]) if calibrate else None
            t = best_f1_threshold(apply_calibration(raw[tr, 0], cal), is0[tr])
            p0 = apply_calibration(raw[va, 0], cal)
            probs[va] = np.stack([p0, 1 - p0], axis=1)
            thresholds[va] = [t, 1 - t]
        elif task == "multilabel":
            yb = y > 0.5
            thresholds[va] = [best_f1_threshold(raw[tr, c], yb[tr, c]) for c in range(k)]
    return probs, thresholds, fold_of
