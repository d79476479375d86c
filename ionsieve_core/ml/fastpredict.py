"""Compact-model inference in numpy alone: scoring without TensorFlow's start-up.

Importing TensorFlow and loading a Keras model costs ~5 s per process (and the command line
pays it for every `import_imzml`); the compact CNN itself needs ~3.7 GFLOP per 100 images
of 56 x 56 px. A *plan* is the model with its batch norms folded into the convolutions (as
`inference_graph` does for TensorFlow), saved as plain arrays in an .npz beside the bundle;
running it is a few BLAS matrix products. Outputs match TensorFlow's to ~1e-6 (tests/ml/test_fastpredict.py).

`export_plan` needs Keras (once, where the model was made); everything else needs numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

PLAN_VERSION = 1
# Images per convolution: the unfolded patches (~30 MB) stay in the CPU caches better than
# those of 64 images.
CONV_BATCH = 16


def plan_path_for(bundle_path: str | os.PathLike) -> Path:
    p = Path(bundle_path)
    return p.with_name(p.stem + ".plan.npz")


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- export (Keras needed)
def model_steps(model) -> list[tuple[str, dict[str, np.ndarray]]] | None:
    """The compact model as numpy steps, batch norms folded; None for any other model."""
    import keras

    if model.name != "compact":
        return None
    steps: list[tuple[str, dict[str, np.ndarray]]] = []
    conv = None  # a convolution waits for the batch norm folded into it
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Conv2D):
            if conv is not None or not _plain_conv(layer):
                return None
            conv = layer
        elif isinstance(layer, keras.layers.BatchNormalization):
            if conv is None or layer.axis not in (-1, [-1], 3, [3]):
                return None
            steps.append(_folded_conv(conv, layer))
            conv = None
        elif conv is not None:
            return None
        else:
            step = _other_step(keras, layer)
            if step is None:
                return None
            steps.append(step)
    return steps if conv is None else None


def _plain_conv(layer) -> bool:
    return (
        not layer.use_bias
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.padding == "same"
    )


def _folded_conv(conv, bn) -> tuple[str, dict[str, np.ndarray]]:
    s = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    return (
        "conv",
        {
            "kernel": (conv.kernel.numpy() * s).astype(np.float32),
            "bias": (bn.beta.numpy() - bn.moving_mean.numpy() * s).astype(np.float32),
        },
    )


def _activation_name(keras, activation) -> str:
    name = keras.activations.serialize(activation)
    return name if isinstance(name, str) else name.get("config", {}).get("name", name.get("class_name"))


def _other_step(keras, layer) -> tuple[str, dict[str, np.ndarray]] | None:
    """The step of an activation, pooling, flatten or dense layer; None for anything else."""
    if isinstance(layer, keras.layers.Activation):
        name = _activation_name(keras, layer.activation)
        return (name, {}) if name in ("relu", "linear") else None
    if isinstance(layer, keras.layers.MaxPooling2D):
        pool, strides = tuple(layer.pool_size), tuple(layer.strides)
        if pool != strides or layer.padding != "valid":
            return None
        return ("pool", {"size": np.asarray(pool, np.int64)})
    if isinstance(layer, keras.layers.Flatten):
        return ("flatten", {})
    if isinstance(layer, keras.layers.Dense):
        act = _activation_name(keras, layer.activation)
        if act not in ("relu", "linear", "softmax", "sigmoid"):
            return None
        b = layer.bias.numpy() if layer.use_bias else np.zeros(layer.units, np.float32)
        return (
            "dense",
            {
                "kernel": layer.kernel.numpy().astype(np.float32),
                "bias": b.astype(np.float32),
                "activation": np.asarray(act),
            },
        )
    return None


def export_plan(bundle, bundle_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path | None:
    """Write the plan of a bundle of compact models beside its file; None if a model is not compact."""
    plans = [model_steps(m) for m in bundle.models]
    if any(p is None for p in plans):
        return None
    out = Path(out) if out is not None else plan_path_for(bundle_path)
    arrays: dict[str, np.ndarray] = {}
    layout = []
    for i, steps in enumerate(plans):
        kinds = []
        for j, (kind, params) in enumerate(steps):
            kinds.append(kind)
            for name, value in params.items():
                arrays[f"m{i}_s{j}_{name}"] = value
        layout.append(kinds)
    meta = {
        "plan_version": PLAN_VERSION,
        "source_sha256": file_sha256(bundle_path),
        "layout": layout,
        "task": bundle.task,
        "classes": list(bundle.classes),
        "input_shape": list(bundle.input_shape),
        "channels": int(bundle.channels),
        "calibration": bundle.calibration,
        "extra": bundle.extra,
        "tta": bool(bundle.params.tta),
        "context": bool(bundle.params.context),
    }
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.asarray(json.dumps(meta, default=float)), **arrays)
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------- running (numpy only)
@dataclass
class Plan:
    task: str
    classes: list[str]
    input_shape: tuple[int, int, int]
    channels: int
    calibration: dict | None
    extra: dict
    tta: bool
    context: bool
    models: list[list[tuple[str, dict[str, np.ndarray]]]] = field(default_factory=list)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Averaged model outputs for a prepared (n, s, s, c) batch."""
        views = _dihedral(x) if self.tta else [x]
        outs = [_run(steps, v) for steps in self.models for v in views]
        return np.mean(outs, axis=0)

    def _prepared(self, images: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None):
        """Model inputs in chunks of 1,024 images (bounded memory), as training.predict makes them."""
        from ionsieve_core.ml.preprocess import prepare

        size = int(self.input_shape[0])
        for s in range(0, len(images), 1024):
            part = images[s : s + 1024]
            ctx = contexts[s : s + 1024] if self.context and contexts is not None else None
            x = prepare(part, size, self.channels, ctx)
            if self.context and contexts is None:
                x = np.concatenate([x, np.zeros(x.shape[:3] + (1,), np.float32)], axis=3)
            yield x

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        from ionsieve_core.ml.calibration import apply_calibration

        if self.task == "binary":
            p0 = apply_calibration(raw[:, 0], self.calibration)
            return np.stack([p0, 1 - p0], axis=1)
        return raw

    def predict(
        self, images: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """(n, C) probabilities (binary: calibrated), as `ionsieve_core.ml.training.predict` gives."""
        from threadpoolctl import threadpool_limits

        if len(images) == 0:
            return np.zeros((0, len(self.classes)))
        out = []
        for x in self._prepared(images, contexts):
            # One BLAS thread: on a shared 2-core machine two threads contend with the worker's
            # other process and run ~4x slower; one costs < 2x when the machine is idle.
            with threadpool_limits(limits=1, user_api="blas"):
                out.append(self.raw(x))
        return self._finish(np.concatenate(out).astype(np.float64))

    def predict_and_embed(
        self, images: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As `ionsieve_core.ml.active.predict_and_embed`: probabilities without test-time
        augmentation and the first model's activations before its output layer."""
        from threadpoolctl import threadpool_limits

        dim = int(self.models[0][-1][1]["kernel"].shape[0])
        if len(images) == 0:
            return np.zeros((0, len(self.classes))), np.zeros((0, dim), np.float32)
        probs, embs = [], []
        for x in self._prepared(images, contexts):
            with threadpool_limits(limits=1, user_api="blas"):
                runs = [_run(steps, x, embed=True) for steps in self.models]
            embs.append(runs[0][0])
            probs.append(np.mean([o for _, o in runs], axis=0))
        return self._finish(np.concatenate(probs).astype(np.float64)), np.concatenate(embs).astype(np.float32)


def load_plan(path: str | os.PathLike, source: str | os.PathLike | None = None) -> Plan | None:
    """The plan at `path`, or None if missing, of another version, or made from another file
    than `source` (a retrained or replaced model must not be scored by a stale plan)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("plan_version") != PLAN_VERSION:
                return None
            if source is not None and meta["source_sha256"] != file_sha256(source):
                return None
            models = []
            for i, kinds in enumerate(meta["layout"]):
                steps = []
                for j, kind in enumerate(kinds):
                    prefix = f"m{i}_s{j}_"
                    steps.append((kind, {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}))
                models.append(steps)
    except (OSError, ValueError, KeyError):
        return None
    return Plan(
        task=meta["task"],
        classes=meta["classes"],
        input_shape=tuple(meta["input_shape"]),
        channels=int(meta["channels"]),
        calibration=meta.get("calibration"),
        extra=meta.get("extra") or {},
        tta=bool(meta.get("tta")),
        context=bool(meta.get("context")),
        models=models,
    )


def _dihedral(x: np.ndarray) -> list[np.ndarray]:
    views = []
    for k in range(4):
        r = np.rot90(x, k, axes=(1, 2))
        views += [r, r[:, :, ::-1]]
    return views


def _run(steps, x: np.ndarray, embed: bool = False):
    """Model outputs for a prepared batch; with `embed`, (activations before the output layer,
    outputs)."""
    if not embed:
        return np.concatenate(
            [_run_batch(steps, x[s : s + CONV_BATCH]) for s in range(0, len(x), CONV_BATCH)]
        )
    emb = np.concatenate(
        [_run_batch(steps[:-1], x[s : s + CONV_BATCH]) for s in range(0, len(x), CONV_BATCH)]
    )
    return emb, _run_batch(steps[-1:], emb)


def _run_batch(steps, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    for kind, p in steps:
        if kind == "conv":
            x = _conv_same(x, p["kernel"], p["bias"])
        elif kind == "relu":
            np.maximum(x, 0, out=x)
        elif kind == "pool":
            ph, pw = (int(v) for v in p["size"])
            n, h, w, c = x.shape
            x = x[:, : h // ph * ph, : w // pw * pw].reshape(n, h // ph, ph, w // pw, pw, c).max(axis=(2, 4))
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "dense":
            x = x @ p["kernel"] + p["bias"]
            act = str(p["activation"])
            if act == "relu":
                np.maximum(x, 0, out=x)
            elif act == "softmax":
                x = np.exp(x - x.max(axis=1, keepdims=True))
                x /= x.sum(axis=1, keepdims=True)
            elif act == "sigmoid":
                x = 1 / (1 + np.exp(-x))
    return x


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """'same' convolution, stride 1: unfold the kh x kw patches, then one matrix product.

    The patch of an output pixel is kh runs of kw x c contiguous values of the padded input
    (a patch row's taps and channels lie side by side), so the unfolding is one copy through a
    strided view, ~2x faster than one strided copy per tap (used for one channel, where each
    run would be a few values). Same patches, same product: the same numbers either way."""
    kh, kw, c, f = kernel.shape
    n, h, w, _ = x.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    if c > 1:
        sn, sy, sx, sc = xp.strides
        patches = as_strided(xp, shape=(n, h, w, kh, kw * c), strides=(sn, sy, sx, sy, sc), writeable=False)
        cols = np.ascontiguousarray(patches)
    else:
        cols = np.empty((n, h, w, kh, kw, c), np.float32)
        for dy in range(kh):
            for dx in range(kw):
                cols[:, :, :, dy, dx, :] = xp[:, dy : dy + h, dx : dx + w, :]
    out = cols.reshape(n * h * w, kh * kw * c) @ kernel.reshape(kh * kw * c, f)
    out += bias
    return out.reshape(n, h, w, f)
