"""A trained model as one file: a zip of .keras model(s) + JSON metadata, written atomically.

Loading never raises: a missing, truncated, corrupt or unknown-version file gives None and a
logged warning, so the web app falls back to the default score instead of failing a page.
The shipped default model (`default_model/`) is loaded once per process by `default_bundle`;
`default_score_model` gives its numpy plan instead when TensorFlow is not warm yet.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ionsieve_core.ml.fastpredict import load_plan, plan_path_for
from ionsieve_core.ml.params import TrainParams

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_NAME = "meta.json"
DEFAULT_MODEL_PATH = Path(__file__).parent / "default_model" / "compact_offsample.zip"


@dataclass
class ModelBundle:
    task: str
    classes: list[str]
    params: TrainParams
    thresholds: list[float]
    models: list[Any]  # keras.Model, averaged
    input_shape: tuple[int, int, int]  # (s, s, channels incl. context)
    channels: int = 1  # image channels, without the context channel
    calibration: dict | None = None
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # e.g. the default score's blend weights
    format_version: int = FORMAT_VERSION
    _infer: Any = field(default=None, repr=False, compare=False)

    def meta(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "classes": list(self.classes),
            "params": self.params.to_dict(),
            "thresholds": [float(t) for t in self.thresholds],
            "calibration": self.calibration,
            "input_shape": [int(v) for v in self.input_shape],
            "channels": int(self.channels),
            "n_models": len(self.models),
            "metrics": self.metrics,
            "extra": self.extra,
        }


def save_bundle(bundle: ModelBundle, path: str | os.PathLike) -> Path:
    """Write the bundle to `path` (a temporary name in the same folder, then os.replace, so a
    reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is not a secret
    try:
        with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(META_NAME, json.dumps(bundle.meta(), indent=1, default=_json_default))
            for i, m in enumerate(bundle.models):
                p = os.path.join(d, f"model_{i}.keras")
                m.save(p)
                zf.write(p, f"model_{i}.keras")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def read_meta(path: str | os.PathLike) -> dict | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(META_NAME))
    except Exception:  # noqa: BLE001 - any unreadable file is "no model"
        return None


def load_bundle(path: str | os.PathLike | None) -> ModelBundle | None:
    """The bundle at `path`, or None (with a warning) when it cannot be used."""
    if path is None or not os.path.exists(path):
        log.warning("model file %s does not exist", path)
        return None
    try:
        import keras

        import ionsieve_core.ml.models  # noqa: F401 - registers the custom layers

        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read(META_NAME))
            version = meta.get("format_version")
            if version != FORMAT_VERSION:
                log.warning(
                    "model file %s has format version %r, this code reads %s", path, version, FORMAT_VERSION
                )
                return None
            models = []
            with tempfile.TemporaryDirectory() as d:
                for i in range(int(meta["n_models"])):
                    p = zf.extract(f"model_{i}.keras", d)
                    models.append(keras.models.load_model(p, compile=False))
        if not models:
            raise ValueError("no model in the bundle")
        return ModelBundle(
            task=meta["task"],
            classes=list(meta["classes"]),
            params=TrainParams.from_dict(meta["params"]),
            thresholds=[float(t) for t in meta["thresholds"]],
            models=models,
            input_shape=tuple(int(v) for v in meta["input_shape"]),
            channels=int(meta.get("channels", 1)),
            calibration=meta.get("calibration"),
            metrics=meta.get("metrics") or {},
            extra=meta.get("extra") or {},
        )
    except Exception as e:  # noqa: BLE001 - corrupt/truncated files must not crash the app
        log.warning("model file %s cannot be loaded: %s: %s", path, type(e).__name__, e)
        return None


# ---------------------------------------------------------------- the shipped default model
_CACHE: dict[tuple, ModelBundle | None] = {}
_PLANS: dict[tuple, object] = {}


def _file_key(path: Path) -> tuple | None:
    """path + mtime + size (None when missing): a replaced file is reloaded, an unchanged one
    (and its compiled inference graph) is reused across calls."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_mtime_ns, st.st_size)


def default_bundle(path: str | os.PathLike | None = None) -> ModelBundle | None:
    """The shipped default model (or the bundle at `path`), loaded once per process."""
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    key = _file_key(path)
    if key is None:
        return None
    if key not in _CACHE:
        # A few entries, so a one-off other path does not evict the default model.
        for old in [k for k in _CACHE if k[0] == key[0]] + list(_CACHE)[: max(0, len(_CACHE) - 3)]:
            _CACHE.pop(old, None)
        _CACHE[key] = load_bundle(path)
    return _CACHE[key]


def default_score_model(model_path: str | os.PathLike | None = None):
    """What gives the default model's scores: its Keras bundle when this process has it loaded
    already (warm TensorFlow is fastest), else its numpy plan (fastpredict.py: no TensorFlow
    start-up, ~5 s, for a command-line import or a fresh worker), else the bundle loaded now.
    `training.predict` takes either."""
    path = Path(model_path) if model_path is not None else DEFAULT_MODEL_PATH
    key = _file_key(path)
    if key is None:
        return None
    if key in _CACHE:
        return _CACHE[key]
    if key not in _PLANS:
        _PLANS.clear()  # one model file at a time: a replaced file's plan goes
        _PLANS[key] = load_plan(plan_path_for(path), source=path)  # None when missing or stale
    return _PLANS[key] or default_bundle(path)
