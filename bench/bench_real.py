"""Real labelled ion images: the default score and a fine-tuned model, with 95% intervals.

    .venv/bin/python bench/bench_real.py [--per-image] [--boot 2000]

Every real labelled ion image in ../shared/data/ionimages/ (found by tests/shared_data.py;
missing data stops the run with exit 1), in two sets that are never pooled in a figure:

  DEVELOPMENT  metaspace_examples, 8 images labelled by experts. They shaped the synthetic
               generator's styles, and the shipped default model was kept because its ROC AUC
               on them rose (commit 624489f): figures on them are not an evaluation.
  EVALUATION   metaspace_model_labelled, 34 images labelled by METASPACE's OWN off-sample model,
               not by experts, never used in development. Figures on them are agreement with
               METASPACE's off-sample model, not accuracy.

Scorers (all settings fixed before any figure on the evaluation images was seen):

  default score        what a project shows before any label: ionsieve_core.ml.default_binary_scores
                       on each set imported as one dataset, as the app scores it (pictures of
                       different sizes: each alone, no context half; one size: the NaN-padded
                       stack with the mean image as context), threshold 0.5.
  shipped model alone  the shipped model's p(off) on each image alone (unpadded): the default
                       score of a single image (its context half needs many ions of one dataset).
  fine-tuned           what Train gives a binary project: ionsieve_core.ml.train with the app's
                       default parameters (compact, 15 epochs, fine-tuned from the shipped model,
                       inner grouped CV for calibration and threshold). Outer grouped
                       cross-validation, one group (source) held out per fold: each image is
                       scored by a model that never saw an image of its source, at the threshold
                       that model chose on its own training images.

Groups (sources): dev:intsco (intsco/off-sample images/), dev:metaspace-tests (metaspace
off-sample tests), eval:explore-off-sample-results and eval:api-example (one per notebook the
images were cropped from; a notebook shows the few datasets it opened).

Intervals: ROC AUC and F1 by a percentile bootstrap over images, resampled within each class
(so both classes are always present); accuracy by Wilson's score interval. Images of one source
are not independent, so with 2-4 sources the true uncertainty is wider still.
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
from ionsieve_core.ml.default_score import context_scores  # noqa: E402
from tests.ml.realimages import CLASSES, RealSet, development_set, evaluation_set  # noqa: E402

Z95 = 1.959964


# ---------------------------------------------------------------- intervals
def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / d
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _auc(is_off: np.ndarray, p_off: np.ndarray) -> float:
    return float(roc_auc_score(is_off, p_off)) if 0 < is_off.sum() < len(is_off) else float("nan")


def _f1(is_off: np.ndarray, pred_off: np.ndarray) -> float:
    return float(f1_score(is_off, pred_off, zero_division=0))


def scores(is_off: np.ndarray, p_off: np.ndarray, threshold: np.ndarray, boot: int, seed: int = 0) -> dict:
    """ROC AUC, F1 (off) and accuracy with 95% intervals; `threshold` is per image (a model
    chosen per fold brings its own)."""
    is_off = np.asarray(is_off, bool)
    pred = np.asarray(p_off) >= np.asarray(threshold)
    n = len(is_off)
    correct = int((pred == is_off).sum())
    out = {
        "n": n,
        "n_off": int(is_off.sum()),
        "n_on": int((~is_off).sum()),
        "auc": _auc(is_off, p_off),
        "f1": _f1(is_off, pred),
        "accuracy": correct / n,
        "accuracy_ci": wilson(correct, n),
        "auc_ci": (float("nan"),) * 2,
        "f1_ci": (float("nan"),) * 2,
    }
    off, on = np.flatnonzero(is_off), np.flatnonzero(~is_off)
    if len(off) and len(on):
        # Resampling within each class: AUC from the (off x on) pair table, F1 from counts.
        rng = np.random.default_rng(seed)
        p_off = np.asarray(p_off, dtype=np.float64)
        pairs = (p_off[off][:, None] > p_off[on][None, :]) + 0.5 * (p_off[off][:, None] == p_off[on][None, :])
        bi = rng.integers(0, len(off), size=(boot, len(off)))
        bj = rng.integers(0, len(on), size=(boot, len(on)))
        aucs = np.array([pairs[i][:, j].mean() for i, j in zip(bi, bj, strict=True)])
        tp = pred[off][bi].sum(axis=1)
        fp = pred[on][bj].sum(axis=1)
        fn = len(off) - tp
        f1s = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        out["auc_ci"] = tuple(float(v) for v in np.percentile(aucs, [2.5, 97.5]))
        out["f1_ci"] = tuple(float(v) for v in np.percentile(f1s, [2.5, 97.5]))
    return out


# ---------------------------------------------------------------- scorers
def default_score(s: RealSet) -> tuple[np.ndarray, bool]:
    """p(off) of the default scorer on the set imported as one dataset, as the app scores it
    (classifier.scoring.default_raw_scores): pictures of different sizes share no acquisition,
    so each is scored cropped to its own size without the context half; pictures of one size
    are scored as one acquisition (NaN-padded stack, context = the mean image)."""
    if len({a.shape[:2] for a in s.images}) > 1:
        return ml.default_binary_scores(list(s.images), None, shared_context=False)[:, 0], False
    h = max(a.shape[0] for a in s.images)
    w = max(a.shape[1] for a in s.images)
    stack = np.full((len(s.images), h, w), np.nan, np.float32)
    for i, a in enumerate(s.images):
        stack[i, : a.shape[0], : a.shape[1]] = a
    with np.errstate(invalid="ignore"), _quiet():
        ctx = np.nanmean(stack, axis=0)
    _, has_bg, _ = context_scores(stack, ctx)
    return ml.default_binary_scores(stack, ctx)[:, 0], bool(has_bg)


class _quiet:
    """Silence numpy's 'mean of empty slice' for all-NaN padding pixels (expected)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def fine_tuned_oof(
    images: list[np.ndarray], y: np.ndarray, groups: np.ndarray, params: ml.TrainParams
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Out-of-fold p(off) and threshold per image: one source held out per fold, a full
    ml.train (inner grouped CV -> calibration + threshold, then the final model) on the rest."""
    p = np.full(len(images), np.nan)
    t = np.full(len(images), np.nan)
    log = []
    for held in np.unique(groups):
        va = np.flatnonzero(groups == held)
        tr = np.flatnonzero(groups != held)
        started = time.perf_counter()
        result = ml.train([images[i] for i in tr], y[tr], groups[tr], "binary", list(CLASSES), params)
        p[va] = ml.predict(result.bundle, [images[i] for i in va])[:, 0]
        t[va] = result.bundle.thresholds[0]
        log.append(
            f"held out {held} ({len(va)} images): trained on {len(tr)} images of "
            f"{len(np.unique(groups[tr]))} sources in {time.perf_counter() - started:.0f} s, "
            f"threshold p(off) >= {result.bundle.thresholds[0]:.3f}"
        )
    return p, t, log


# ---------------------------------------------------------------- report
def _fmt(v: float, ci: tuple[float, float]) -> str:
    if np.isnan(v):
        return f"{'n/a':<18}"
    flat = "*" if round(ci[0], 2) == round(ci[1], 2) else ""
    return f"{v:.2f} ({ci[0]:.2f}-{ci[1]:.2f}){flat}".ljust(18)


def table(title: str, rows: list[tuple[str, dict]]) -> None:
    print(title)
    print(
        f"  {'scorer / group':<44}{'n (off/on)':<12}{'ROC AUC (95% CI)':<19}{'F1 off (95% CI)':<19}"
        "accuracy (95% CI)"
    )
    for name, r in rows:
        print(
            f"  {name:<44}{r['n']:>2} ({r['n_off']}/{r['n_on']})".ljust(58)
            + f"{_fmt(r['auc'], r['auc_ci'])} {_fmt(r['f1'], r['f1_ci'])} {_fmt(r['accuracy'], r['accuracy_ci'])}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-image", action="store_true", help="print every image's p(off)")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    a = ap.parse_args()
    t0 = time.perf_counter()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    if not DEFAULT_MODEL_PATH.exists():
        sys.exit(f"bench_real: the shipped default model {DEFAULT_MODEL_PATH} is missing")
    dev, ev = development_set(), evaluation_set()
    sets = (dev, ev)
    bundle = ml.load_bundle(DEFAULT_MODEL_PATH)
    if bundle is None:
        sys.exit(f"bench_real: the shipped default model {DEFAULT_MODEL_PATH} cannot be loaded")

    # Scores per set (default score, shipped model alone) and out of fold over both sets.
    p_default, has_bg, p_alone = {}, {}, {}
    for s in sets:
        p_default[s.name], has_bg[s.name] = default_score(s)
        p_alone[s.name] = ml.predict(bundle, s.images)[:, 0]
    t_default = time.perf_counter() - t0

    params = ml.TrainParams(arch="compact", folds=5, ensemble=1, context=False, init="default")
    images = dev.images + ev.images
    y = np.concatenate([dev.labels, ev.labels])
    groups = np.asarray(dev.groups + ev.groups)
    t1 = time.perf_counter()
    p_ft, t_ft, log = fine_tuned_oof(images, y, groups, params)
    t_train = time.perf_counter() - t1
    split = {dev.name: slice(0, len(dev.images)), ev.name: slice(len(dev.images), len(images))}

    print(
        f"\nfine-tuned model: {params.arch} {params.input_size}x{params.input_size}, {params.epochs} epochs, "
        f"init from the shipped model, seed {params.seed}; outer grouped CV over {len(np.unique(groups))} "
        f"sources ({t_train:.0f} s)"
    )
    for line in log:
        print("  " + line)

    for s in sets:
        is_off = s.labels == 0
        g = np.asarray(s.groups)
        half = np.full(len(is_off), 0.5)
        rows = []
        for label, p, t in (
            ("default score (folder as one dataset)", p_default[s.name], half),
            ("shipped model alone (each image alone)", p_alone[s.name], half),
            ("fine-tuned, out of fold (source held out)", p_ft[split[s.name]], t_ft[split[s.name]]),
        ):
            rows.append((label, scores(is_off, p, t, a.boot)))
            for grp in np.unique(g):
                m = g == grp
                rows.append((f"  {grp}", scores(is_off[m], p[m], t[m], a.boot)))
        print()
        if s.role == "development":
            table(
                f"DEVELOPMENT images: {s.name}, {len(s.images)} real images labelled by {s.labelled_by}.\n"
                "They shaped the generator's styles and the shipped model was kept because its AUC on\n"
                "them rose (commit 624489f): these figures are NOT an evaluation.",
                rows,
            )
        else:
            table(
                f"EVALUATION images: {s.name}, {len(s.images)} real images labelled by {s.labelled_by},\n"
                "never used in development. Figures = AGREEMENT WITH METASPACE'S OFF-SAMPLE MODEL, not accuracy.",
                rows,
            )
        print(
            f"  default score: context half {'blended in' if has_bg[s.name] else 'not used (no background found)'}"
            "; thresholds: 0.5 for the default score and the shipped model, the fold model's own for fine-tuned"
        )
        if a.per_image or s.role == "development":
            print("  p(off) per image: default / alone / fine-tuned   label  file")
            for i, name in enumerate(s.names):
                j = split[s.name].start + i
                print(
                    f"    {p_default[s.name][i]:.3f} / {p_alone[s.name][i]:.3f} / {p_ft[j]:.3f}"
                    f"   {CLASSES[s.labels[i]]:<5}  {name}"
                )
    print(
        "\n* the bootstrap cannot widen a score its sample shows no spread in (e.g. no error among a few\n"
        "  images): read it as 'no error seen among these n', not as certainty; Wilson's accuracy\n"
        "  interval gives the honest width."
    )
    print(
        f"\nbench_real: {time.perf_counter() - t0:.0f} s in all (default scores {t_default:.0f} s, "
        f"fine-tuning {t_train:.0f} s)"
    )


if __name__ == "__main__":
    main()
