"""train / predict: grouped cross-validation, out-of-fold calibration, final model(s)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ionsieve_core.ml.bundle import ModelBundle, default_bundle
from ionsieve_core.ml.calibration import apply_calibration, best_f1_threshold, cross_fitted, fit_calibration
from ionsieve_core.ml.params import TASKS, TrainParams
from ionsieve_core.ml.preprocess import channels_of, prepare

Progress = Callable[[float, str], None]


class TrainingCancelled(Exception):
    """should_stop() said yes: the run stops at the end of the current epoch."""


@dataclass
class TrainResult:
    bundle: ModelBundle
    metrics: dict
    notes: list[str] = field(default_factory=list)
    oof_probabilities: np.ndarray | None = None
    # Held out, per image: probabilities from the fold model that never saw the image's group,
    # calibrated with thresholds fitted on the other folds only; and the fold it was in.
    held_out: np.ndarray | None = None
    held_out_thresholds: np.ndarray | None = None
    fold_of: np.ndarray | None = None
    # "groups" when folds are grouped (by dataset), "images" when split inside one group.
    held_out_by: str = "groups"


def _targets(y: np.ndarray, task: str, k: int) -> np.ndarray:
    if task == "multilabel":
        return np.asarray(y, dtype=np.float32).reshape(len(y), k)
    return np.eye(k, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def _weights_and_index(
    y: np.ndarray, task: str, k: int, params: TrainParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(index of samples to use, per-sample weight): balanced class weights for single-label
    tasks; for multilabel, positives of rare classes are repeated (weights cannot express
    'this label is rare' when a sample has several labels)."""
    n = len(y)
    idx = np.arange(n)
    if not params.class_weight:
        return idx, np.ones(n, np.float32)
    if task != "multilabel":
        y = np.asarray(y, dtype=np.int64)
        counts = np.bincount(y, minlength=k).astype(np.float64)
        present = counts > 0
        w = np.zeros(k)
        w[present] = n / (present.sum() * counts[present])
        return idx, w[y].astype(np.float32)
    y = np.asarray(y) > 0.5
    target = max(1, n // (2 * k))
    extra = []
    for c in range(k):
        pos = np.flatnonzero(y[:, c])
        if 0 < len(pos) < target:
            need = min(target - len(pos), 9 * len(pos))  # at most 10x: do not memorise 2 images
            extra.append(rng.choice(pos, size=need, replace=True))
    if extra:
        idx = np.concatenate([idx, *extra])
    return idx, np.ones(len(idx), np.float32)


EAGER_MAX_STEPS = 24


def fit_models(
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    k: int,
    params: TrainParams,
    seed: int,
    on_epoch: Callable[[int, int, int], None] | None = None,
) -> list:
    """params.ensemble trained models on (x, y). on_epoch(member, epoch, epochs) may raise."""
    import keras
    import tensorflow as tf

    from ionsieve_core.ml.models import RandomDihedral, compile_model, make_model

    rng = np.random.default_rng(seed)
    idx, w = _weights_and_index(y, task, k, params, rng)
    t = _targets(np.asarray(y)[idx], task, k)
    xs = x[idx]
    models = []
    for member in range(params.ensemble):
        s = seed * 1000 + member
        keras.utils.set_random_seed(s)
        net = make_model(x.shape[1:], k, params.arch, task, params.weights_path)
        warm = params.init == "default" and warm_start(net)
        model = compile_model(
            net,
            task,
            params.learning_rate * (WARM_LR_FACTOR if warm else 1.0),
            params.momentum,
            params.label_smoothing,
        )
        # Tracing the train step costs ~1-2 s per model (twice: full and last partial batch);
        # for a tiny run (a handful of steps) running eagerly is faster and trains the same.
        model.run_eagerly = params.epochs * math.ceil(len(xs) / params.batch_size) <= EAGER_MAX_STEPS
        ds = tf.data.Dataset.from_tensor_slices((xs, t, w)).shuffle(
            len(xs), seed=s, reshuffle_each_iteration=True
        )
        ds = ds.batch(params.batch_size)
        if params.augment:
            aug = RandomDihedral(seed=s)
            ds = ds.map(lambda a, b, c, aug=aug: (aug(a, training=True), b, c))
        ds = ds.prefetch(2)

        callbacks = []
        if on_epoch is not None:

            class _Report(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None, member=member):
                    on_epoch(member, epoch + 1, params.epochs)

            callbacks.append(_Report())
        model.fit(ds, epochs=params.epochs, verbose=0, callbacks=callbacks, shuffle=False)
        models.append(model)
    return models


WARM_LR_FACTOR = 0.3  # fine-tuning: smaller steps keep what the pretrained weights know


def warm_start(net) -> bool:
    """Copy the shipped default model's weights into `net` when the architectures match."""
    bundle = default_bundle()
    if bundle is None or not bundle.models:
        return False
    source = bundle.models[0]
    if [w.shape for w in source.get_weights()] != [w.shape for w in net.get_weights()]:
        return False
    net.set_weights(source.get_weights())
    return True


PREDICT_BATCH = 1024  # images preprocessed per chunk (while the model runs the previous one)
MODEL_BATCH = 256  # images per model call: larger batches spill the activations out of cache


def _infer_fn(models: list, tta: bool):
    import tensorflow as tf

    from ionsieve_core.ml.models import dihedral_views, inference_graph

    # One graph for any batch size (traced once, no XLA compilation), calling the models
    # directly (no model.predict per call); compact models run with folded batch norms.
    graphs = [inference_graph(m) for m in models]

    @tf.function(input_signature=[tf.TensorSpec((None, *models[0].input_shape[1:]), tf.float32)])
    def infer(x):
        views = dihedral_views(x) if tta else [x]
        outs = [g(v) for g in graphs for v in views]
        return tf.add_n(outs) / float(len(outs))

    return infer


def _run_chunk(infer, chunk: np.ndarray) -> np.ndarray:
    chunk = np.ascontiguousarray(chunk, dtype=np.float32)
    return np.concatenate(
        [infer(chunk[s : s + MODEL_BATCH]).numpy() for s in range(0, len(chunk), MODEL_BATCH)]
    )


def raw_predict(
    models: list, x: np.ndarray, batch_size: int = PREDICT_BATCH, tta: bool = False, infer=None
) -> np.ndarray:
    """Averaged model outputs for a prepared batch."""
    infer = infer or _infer_fn(models, tta)
    out = [_run_chunk(infer, x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
    k = models[0].output_shape[-1]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, k))


def finish(task: str, raw: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Model outputs -> the probabilities the app stores (binary: calibrated [p0, 1 - p0])."""
    if task == "binary":
        p0 = apply_calibration(raw[:, 0], calibration)
        return np.stack([p0, 1 - p0], axis=1)
    return raw


def _check(images, y, groups, task, classes) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    if not (len(images) == len(y) == len(groups)):
        raise ValueError("images, y and groups must have the same length")
    if task == "binary" and len(classes) != 2:
        raise ValueError("a binary task needs exactly 2 classes")


def _folds_note(n_groups: int, n_folds: int, asked: int) -> str:
    if n_groups == 1:
        return (
            "All labelled images come from one dataset: cross-validation split images within it "
            "(stratified), so the scores overestimate performance on new datasets."
        )
    if n_groups < asked:
        return f"Only {n_groups} datasets: {n_folds}-fold cross-validation (one dataset per fold)."
    return f"{n_folds}-fold cross-validation grouped by dataset ({n_groups} datasets)."


class _EpochReporter:
    """Progress over every epoch of every fit (folds + final), and the cancellation check."""

    def __init__(self, params: TrainParams, fits: int, progress: Progress | None, should_stop) -> None:
        self.params = params
        self.total = params.epochs * params.ensemble * fits
        self.done = 0
        self.progress = progress
        self.should_stop = should_stop

    def stop_check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise TrainingCancelled()

    def reporter(self, label: str):
        def on_epoch(member: int, epoch: int, epochs: int) -> None:
            self.done += 1
            if self.progress is not None:
                m = f", model {member + 1}/{self.params.ensemble}" if self.params.ensemble > 1 else ""
                self.progress(min(1.0, self.done / self.total), f"{label}{m}, epoch {epoch}/{epochs}")
            self.stop_check()

        return on_epoch


def _decision(
    task: str, oof: np.ndarray, y: np.ndarray, classes: list[str], params: TrainParams
) -> tuple[np.ndarray, list[float], dict | None, str]:
    """Out-of-fold probabilities as the final model will give them (calibrated), the decision
    thresholds fitted on them, the calibration, and a note saying which."""
    k = len(classes)
    if task == "binary":
        is0 = y.astype(int) == 0
        calibration = fit_calibration(oof[:, 0], is0) if params.calibrate else None
        oof_final = finish(task, oof, calibration)
        t = best_f1_threshold(oof_final[:, 0], is0)
        note = (
            f"Calibration: {calibration['method'] if calibration else 'none'}; "
            f"threshold on p({classes[0]}) = {t:.3f} (best F1 of {classes[0]} out of fold)."
        )
        return oof_final, [t, 1 - t], calibration, note
    if task == "multilabel":
        yb = y > 0.5
        thresholds = [best_f1_threshold(oof[:, c], yb[:, c]) for c in range(k)]
        note = "Per-class thresholds (best F1 out of fold): " + ", ".join(
            f"{c}={t:.2f}" for c, t in zip(classes, thresholds, strict=True)
        )
        return oof, thresholds, None, note
    return oof, [0.5] * k, None, ""


def train(
    images: Sequence[np.ndarray],
    y,
    groups,
    task: str,
    classes: Sequence[str],
    params: TrainParams | None = None,
    contexts: Sequence[np.ndarray] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Grouped K-fold CV (out-of-fold predictions -> calibration, thresholds, metrics), then
    the final model(s) on all data."""
    # Imported here: they bring scikit-learn and SciPy (~2 s), which predicting does not need.
    from ionsieve_core.ml.cv import grouped_folds
    from ionsieve_core.ml.metrics import compute_metrics

    params = params or TrainParams()
    classes = list(classes)
    groups = np.asarray(groups).astype(str)
    y = np.asarray(y)
    _check(images, y, groups, task, classes)
    k = len(classes)
    notes: list[str] = []
    channels = channels_of(images)
    x = prepare(images, params.input_size, channels, contexts if params.context else None)
    if params.context and contexts is None:
        notes.append("context was asked for but no context images were given: the channel is blank")

    n_groups = len(np.unique(groups))
    folds = grouped_folds(groups, params.folds, y if task != "multilabel" else None, seed=params.seed)
    notes.append(_folds_note(n_groups, len(folds), params.folds))
    epochs = _EpochReporter(params, len(folds) + 1, progress, should_stop)

    oof = np.zeros((len(x), k), np.float64)
    for f, (tr, va) in enumerate(folds):
        epochs.stop_check()
        models = fit_models(
            x[tr], y[tr], task, k, params, params.seed + f + 1, epochs.reporter(f"Fold {f + 1}/{len(folds)}")
        )
        oof[va] = raw_predict(models, x[va], tta=params.tta)
        del models

    oof_final, thresholds, calibration, note = _decision(task, oof, y, classes, params)
    if note:
        notes.append(note)
    held_out, held_out_thresholds, fold_of = cross_fitted(task, oof, y, folds, calibrate=params.calibrate)
    metrics = compute_metrics(y, oof_final, task, classes, groups=groups, thresholds=thresholds)
    metrics["per_fold"] = [
        compute_metrics(y[va], oof_final[va], task, classes, thresholds=thresholds)["overall"]
        for _, va in folds
    ]
    metrics["folds"] = len(folds)
    metrics = _jsonable(metrics)

    epochs.stop_check()
    final = fit_models(x, y, task, k, params, params.seed, epochs.reporter("Final model"))
    bundle = ModelBundle(
        task=task,
        classes=classes,
        params=params,
        thresholds=[float(t) for t in thresholds],
        models=final,
        input_shape=tuple(int(v) for v in x.shape[1:]),
        channels=channels,
        calibration=calibration,
        metrics={"overall": {k2: metrics["overall"][k2] for k2 in ("accuracy", "f1_macro", "roc_auc", "n")}},
    )
    if progress is not None:
        progress(1.0, "Training finished")
    return TrainResult(
        bundle=bundle,
        metrics=metrics,
        notes=notes,
        oof_probabilities=oof_final,
        held_out=held_out,
        held_out_thresholds=held_out_thresholds,
        fold_of=fold_of,
        held_out_by="images" if n_groups == 1 else "groups",
    )


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    return o


def predict(
    bundle: ModelBundle,
    images: Sequence[np.ndarray],
    contexts: Sequence[np.ndarray] | None = None,
    batch_size: int = PREDICT_BATCH,
) -> np.ndarray:
    """(n, C) probabilities (binary: calibrated) for raw variable-size arrays.

    Images go through in chunks of batch_size: a worker thread preprocesses chunk i + 1 while
    the model runs on chunk i (numpy and TensorFlow release the GIL), and only one chunk of
    prepared input is held at a time.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ionsieve_core.ml.fastpredict import Plan

    if isinstance(bundle, Plan):  # the numpy plan of a compact model: no TensorFlow needed
        return bundle.predict(images, contexts)
    k = len(bundle.classes)
    n = len(images)
    if n == 0:
        return np.zeros((0, k))
    size = int(bundle.input_shape[0])
    use_ctx = bool(bundle.params.context)
    if use_ctx and contexts is not None and len(contexts) != n:
        raise ValueError("contexts must have one entry per image")

    def prep(start: int) -> np.ndarray:
        part = images[start : start + batch_size]
        ctx = contexts[start : start + batch_size] if use_ctx and contexts is not None else None
        x = prepare(part, size, bundle.channels, ctx)
        if use_ctx and contexts is None:
            x = np.concatenate([x, np.zeros(x.shape[:3] + (1,), np.float32)], axis=3)
        return x

    if bundle._infer is None:  # traced once per bundle, reused across calls
        bundle._infer = _infer_fn(bundle.models, bundle.params.tta)
    infer = bundle._infer
    starts = list(range(0, n, batch_size))
    out = []
    if len(starts) == 1:
        out.append(_run_chunk(infer, prep(0)))
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml-prep") as pool:
            nxt = pool.submit(prep, starts[0])
            for i in range(len(starts)):
                x = nxt.result()
                if i + 1 < len(starts):
                    nxt = pool.submit(prep, starts[i + 1])
                out.append(_run_chunk(infer, x))
    raw = np.concatenate(out).astype(np.float64)
    return finish(bundle.task, raw, bundle.calibration)
