"""Learning while the user labels: image embeddings, a quick head on them, and which images to
ask for next. Pure numpy / TensorFlow / scikit-learn.

- `predict_and_embed`: one pass of a trained bundle giving its probabilities and, per image, the
  activations of the layer before its output (the embedding the quick head learns from).
- `default_embeddings`: embeddings from the shipped off-sample model (a local file, never a
  download) for projects without a trained model, multi-class and multi-label included; a
  multi-channel picture is embedded channel by channel, so which channel holds the signal is kept.
- `fit_head` / `head_probabilities`: the quick update, a logistic regression on standardised
  embeddings (scikit-learn); `cross_validated_head` gives its held-out predictions.
- `select`: the acquisition strategies (active = uncertainty mixed with diversity, random,
  probability = most likely first-class (off-sample) first).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ionsieve_core.ml.preprocess import channels_of, prepare

STRATEGIES = ("active", "random", "probability")
STRATEGY_NAMES = {
    "active": "most informative first (uncertain and unlike what is labelled)",
    "random": "random order",
    "probability": "most likely off-sample first",
}
EMBED_BATCH = 512


# ---------------------------------------------------------------- embeddings
def _embed_graph(model):
    """x -> (embedding, probabilities) for one model (call inside a tf.function)."""
    import keras
    import tensorflow as tf

    from ionsieve_core.ml.models import _folded_steps, run_steps

    steps = _folded_steps(model)
    if steps is not None and steps[-1][0] == "dense":

        def run(x):
            x = run_steps(steps[:-1], x)  # everything but the classifier: the embedding
            last = steps[-1][1]
            return x, last[2](tf.matmul(x, last[0]) + last[1])

        return run
    out = model.get_layer("probabilities")
    sub = keras.Model(model.inputs, [out.input, model.output])
    return lambda x: tuple(sub(x, training=False))


def _embed_fn(models: list):
    import tensorflow as tf

    graphs = [_embed_graph(m) for m in models]

    @tf.function(input_signature=[tf.TensorSpec((None, *models[0].input_shape[1:]), tf.float32)])
    def infer(x):
        outs = [g(x) for g in graphs]
        # Embeddings of different ensemble members are not aligned: the first member's.
        return outs[0][0], tf.add_n([o[1] for o in outs]) / float(len(outs))

    return infer


def _run(bundle, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fn = getattr(bundle, "_embed", None)
    if fn is None:
        fn = _embed_fn(bundle.models)
        bundle._embed = fn
    embs, outs = [], []
    for s in range(0, len(x), 256):
        e, o = fn(np.ascontiguousarray(x[s : s + 256], dtype=np.float32))
        embs.append(e.numpy())
        outs.append(o.numpy())
    return np.concatenate(embs).astype(np.float32), np.concatenate(outs).astype(np.float64)


def predict_and_embed(
    bundle, images: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """((n, C) probabilities as `training.predict` gives them (without test-time augmentation),
    (n, d) float32 embeddings) in one pass of the network."""
    from ionsieve_core.ml.fastpredict import Plan
    from ionsieve_core.ml.training import finish

    if isinstance(bundle, Plan):  # the shipped model's numpy plan: no TensorFlow start-up
        return bundle.predict_and_embed(images, contexts)

    n = len(images)
    d = _embed_dim(bundle)
    if n == 0:
        return np.zeros((0, len(bundle.classes))), np.zeros((0, d), np.float32)
    size = int(bundle.input_shape[0])
    use_ctx = bool(bundle.params.context)
    probs, embs = [], []
    for s in range(0, n, EMBED_BATCH):
        part = images[s : s + EMBED_BATCH]
        ctx = contexts[s : s + EMBED_BATCH] if use_ctx and contexts is not None else None
        x = prepare(part, size, bundle.channels, ctx)
        if use_ctx and contexts is None:
            x = np.concatenate([x, np.zeros(x.shape[:3] + (1,), np.float32)], axis=3)
        e, o = _run(bundle, x)
        embs.append(e)
        probs.append(o)
    return finish(bundle.task, np.concatenate(probs), bundle.calibration), np.concatenate(embs)


def _embed_dim(bundle) -> int:
    return int(bundle.models[0].get_layer("probabilities").input.shape[-1])


def default_embeddings(images: Sequence[np.ndarray], model_path=None) -> np.ndarray | None:
    """(n, d x channels) embeddings from the shipped off-sample model, or None without it."""
    from ionsieve_core.ml.bundle import default_score_model

    bundle = default_score_model(model_path)  # the numpy plan unless TensorFlow is warm already
    if bundle is None:
        return None
    channels = channels_of(images) if len(images) else 1
    if channels == 1:
        return predict_and_embed(bundle, [_grey(a) for a in images])[1]
    parts = [predict_and_embed(bundle, [_channel(a, c) for a in images])[1] for c in range(channels)]
    return np.concatenate(parts, axis=1)


def with_prior(emb: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
    """Embeddings with the scorer's own opinion appended (the logit of its first-class
    probability), so a quick head starts from what the scorer knew (the default score's context
    half is in no embedding) instead of from nothing."""
    emb = np.asarray(emb, dtype=np.float32)
    if probs is None:
        return emb
    p = np.clip(np.asarray(probs, dtype=np.float64)[:, :1], 1e-4, 1 - 1e-4)
    return np.concatenate([emb, np.log(p / (1 - p)).astype(np.float32)], axis=1)


def _grey(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return np.nanmean(a, axis=2) if a.ndim == 3 else a


def _channel(a: np.ndarray, c: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 2:
        return a
    return a[:, :, c] if c < a.shape[2] else np.zeros(a.shape[:2], np.float32)


def single_threaded(fn):
    """Run with one BLAS thread: these problems are small (hundreds of rows x 257 columns), and
    on a busy two-core machine OpenBLAS's spinning threads made one fit 100x slower (2.4 s vs
    0.03 s for six fits, measured)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------- the quick head
@dataclass
class Head:
    """A linear head on standardised embeddings: probabilities = act(z W^T + b)."""

    task: str
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (k, d)
    intercept: np.ndarray  # (k,)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "task": np.array(self.task),
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": self.intercept,
        }

    @classmethod
    def from_arrays(cls, a) -> Head:
        return cls(
            task=str(a["task"]), mean=a["mean"], scale=a["scale"], coef=a["coef"], intercept=a["intercept"]
        )


class HeadError(ValueError):
    """The labels cannot fit a head yet (one class only), worded for the user."""


def _targets(y: np.ndarray, task: str, k: int) -> np.ndarray:
    return (
        np.asarray(y, dtype=np.float32).reshape(len(y), k)
        if task == "multilabel"
        else np.asarray(y, np.int64)
    )


PRIOR_WEIGHT = 20.0  # the scorer's opinion counts like this many labels, however many images it covers
PRIOR_SAMPLE = 500


def prior_pseudo_labels(emb: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary embeddings made by `with_prior` carry the scorer's logit in their last column: a
    sample of them, labelled by the scorer, with weights by its confidence summing to
    PRIOR_WEIGHT. Fitted beside the user's labels, they keep a head built on a few labels from
    throwing away what the scorer knew; as labels grow, their share shrinks."""
    emb = np.asarray(emb, dtype=np.float32)
    rng = np.random.default_rng(seed)
    idx = (
        rng.choice(len(emb), size=min(len(emb), PRIOR_SAMPLE), replace=False)
        if len(emb)
        else np.zeros(0, int)
    )
    z = emb[idx, -1].astype(np.float64)
    y = np.where(z > 0, 0, 1)  # logit of p(first class) > 0: the first class
    conf = np.abs(np.tanh(z / 2))  # |2p - 1|
    w = conf * PRIOR_WEIGHT / max(float(conf.sum()), 1e-9)
    return emb[idx], y, w


@single_threaded
def fit_head(
    emb: np.ndarray,
    y: np.ndarray,
    task: str,
    k: int,
    c: float = 0.5,
    prior: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Head:
    """Logistic regression (balanced class weights) of y on the embeddings. Single-label tasks
    need two classes among the labels; classes nobody labelled yet get no probability.
    Multi-label: one regression per class; a class always (or never) given keeps its rate.
    `prior` (binary): (embeddings, labels, weights) from prior_pseudo_labels, fitted beside y."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(emb, dtype=np.float32)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
    z = (x - mean) / scale
    d = x.shape[1]
    coef = np.zeros((k, d), np.float32)
    intercept = np.zeros(k, np.float32)
    t = _targets(y, task, k)
    if task == "multilabel":
        for j in range(k):
            col = t[:, j] > 0.5
            if col.all() or not col.any():
                rate = (col.sum() + 0.5) / (len(col) + 1.0)
                intercept[j] = np.log(rate / (1 - rate))
                continue
            lr = LogisticRegression(C=c, class_weight="balanced", max_iter=300).fit(z, col)
            coef[j], intercept[j] = lr.coef_[0], lr.intercept_[0]
        return Head(task, mean, scale, coef, intercept)
    present = np.unique(t)
    if len(present) < 2:
        raise HeadError("The quick update needs labels of at least two classes.")
    # Balanced class weights over the user's labels (computed here: pseudo-labels must not count).
    counts = np.bincount(t, minlength=k).astype(np.float64)
    sw = (len(t) / (len(present) * counts[t])).astype(np.float64)
    if prior is not None and task == "binary" and len(prior[0]):
        pz = (np.asarray(prior[0], dtype=np.float32) - mean) / scale
        z = np.concatenate([z, pz])
        t = np.concatenate([t, np.asarray(prior[1], dtype=np.int64)])
        sw = np.concatenate([sw, np.asarray(prior[2], dtype=np.float64)])
    with warnings.catch_warnings():  # a few hundred iterations short of the optimum still ranks well
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr = LogisticRegression(C=c, max_iter=500).fit(z, t, sample_weight=sw)
    intercept[:] = -1e4  # a class nobody labelled yet: never predicted
    if len(present) == 2:
        # scikit-learn keeps one row for two classes: logit of the second against the first.
        coef[present[1]], intercept[present[1]] = lr.coef_[0] / 2, lr.intercept_[0] / 2
        coef[present[0]], intercept[present[0]] = -lr.coef_[0] / 2, -lr.intercept_[0] / 2
    else:
        coef[present], intercept[present] = lr.coef_, lr.intercept_
    return Head(task, mean, scale, coef, intercept)


@single_threaded
def head_probabilities(head: Head, emb: np.ndarray) -> np.ndarray:
    """(n, k) probabilities; softmax for single-label tasks, sigmoid per class for multi-label."""
    x = np.asarray(emb, dtype=np.float32)
    z = ((x - head.mean) / head.scale) @ head.coef.T + head.intercept
    z = z.astype(np.float64)
    if head.task == "multilabel":
        return 1 / (1 + np.exp(-np.clip(z, -50, 50)))
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@single_threaded
def cross_validated_head(
    emb: np.ndarray, y: np.ndarray, task: str, k: int, folds: list[tuple[np.ndarray, np.ndarray]], prior=None
) -> np.ndarray:
    """Out-of-fold head probabilities: each image scored by a head that never saw its fold (a
    fold whose training part lacks a second class gets the class rates of that part)."""
    t = _targets(y, task, k)
    oof = np.zeros((len(emb), k))
    for tr, va in folds:
        try:
            oof[va] = head_probabilities(fit_head(emb[tr], y[tr], task, k, prior=prior), emb[va])
        except HeadError:
            if task == "multilabel":
                oof[va] = t[tr].mean(axis=0)
            else:
                oof[va] = np.bincount(t[tr], minlength=k) / max(1, len(tr))
    return oof


# ---------------------------------------------------------------- what to label next
def uncertainty(probs: np.ndarray, task: str, thresholds: np.ndarray | None = None) -> np.ndarray:
    """(n,) in 0..1, 1 = the scores cannot decide: binary and multi-label, closeness of a score
    to its decision threshold (the most uncertain class); multi-class, 1 - margin between the
    two most likely classes."""
    p = np.asarray(probs, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0)
    k = p.shape[1]
    t = np.full(k, 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if task == "binary":
        span = np.where(p[:, 0] >= t[0], 1 - t[0], t[0])
        return 1 - np.minimum(1, np.abs(p[:, 0] - t[0]) / np.maximum(span, 1e-6))
    if task == "multilabel":
        span = np.where(p >= t, 1 - t, t)
        return (1 - np.minimum(1, np.abs(p - t) / np.maximum(span, 1e-6))).max(axis=1)
    top2 = -np.sort(-p, axis=1)[:, :2]
    return 1 - (top2[:, 0] - top2[:, 1]) if k > 1 else np.zeros(len(p))


def _unit(e: np.ndarray) -> np.ndarray:
    e = np.asarray(e, dtype=np.float32)
    e = e - e.mean(axis=0) if len(e) > 1 else e
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-6)


def _min_distance(points: np.ndarray, to: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Euclidean distance of each point to its nearest point of `to` (unit vectors)."""
    out = np.full(len(points), np.inf, np.float32)
    for s in range(0, len(to), chunk):
        sim = points @ to[s : s + chunk].T
        out = np.minimum(out, np.sqrt(np.maximum(0.0, 2 - 2 * sim.max(axis=1))))
    return out


@single_threaded
def select(
    n: int,
    strategy: str,
    *,
    uncertainty: np.ndarray | None = None,
    probability: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    labelled_embeddings: np.ndarray | None = None,
    seed: int = 0,
    pool_factor: int = 20,
) -> np.ndarray:
    """Indices (into the candidates) of the n to label next, best first.

    active: greedy k-centre weighted by uncertainty. A pool of the most uncertain candidates
    (pool_factor x n) is kept; each pick maximises (uncertainty + 0.05) x the distance (in
    embedding space) to the nearest labelled or already picked image, so ten near-identical
    uncertain images do not fill one batch. Without scores it is plain k-centre (a spread first
    batch); without embeddings plain uncertainty.
    random: a random order (seeded). probability: highest first-class (off-sample) score first.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    m = (
        len(uncertainty)
        if uncertainty is not None
        else (
            len(probability) if probability is not None else len(embeddings) if embeddings is not None else 0
        )
    )
    n = max(0, min(int(n), m))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return rng.permutation(m)[:n].astype(np.int64)
    if strategy == "probability":
        p = np.asarray(probability if probability is not None else np.zeros(m), dtype=np.float64)
        p = np.where(np.isfinite(p), p, -1.0)
        return np.argsort(-p, kind="stable")[:n].astype(np.int64)
    u = np.asarray(uncertainty if uncertainty is not None else np.ones(m), dtype=np.float64)
    u = np.where(np.isfinite(u), u, 1.0)  # not scored yet: as uncertain as can be
    # Ties (e.g. no scores at all) are broken at random, not by index.
    order = np.lexsort((rng.random(m), -u))
    if embeddings is None:
        return order[:n].astype(np.int64)
    pool = order[: min(m, max(pool_factor * n, 200))]
    e = _unit(np.asarray(embeddings, dtype=np.float32))
    ep = e[pool]
    if labelled_embeddings is not None and len(labelled_embeddings):
        lab = np.asarray(labelled_embeddings, dtype=np.float32)
        if len(e) > 1:
            lab = lab - np.asarray(embeddings, dtype=np.float32).mean(axis=0)
        lab = lab / np.maximum(np.linalg.norm(lab, axis=1, keepdims=True), 1e-6)
        d = _min_distance(ep, lab)
    else:
        d = np.ones(len(pool), np.float32)
    w = u[pool] + 0.05
    picked: list[int] = []
    taken = np.zeros(len(pool), bool)
    for _ in range(n):
        score = np.where(taken, -np.inf, w * d)
        j = int(np.argmax(score))
        picked.append(j)
        taken[j] = True
        d = np.minimum(d, np.sqrt(np.maximum(0.0, 2 - 2 * ep @ ep[j])))
    return pool[np.asarray(picked, dtype=np.int64)]
