"""IonSieve's pure ML package: numpy, TensorFlow/Keras, scikit-learn and scikit-image only.

The Django side calls `from ionsieve_core import ml` then ml.train / ml.predict /
ml.save_bundle / ml.load_bundle / ml.default_binary_scores.

Each name is imported from its module on first use (PEP 562): scoring a new dataset needs
numpy only, and importing scikit-learn with SciPy for cross-validation and metrics took ~2 s
of a 4-5 s `import_imzml`.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

# Quiet TensorFlow's start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_WHERE = {
    "FORMAT_VERSION": "bundle",
    "ModelBundle": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    "grouped_folds": "cv",
    "default_binary_scores": "default_score",
    "default_context_scores": "default_score",
    "estimate_sample_mask": "default_score",
    "compute_metrics": "metrics",
    "TrainParams": "params",
    "prepare": "preprocess",
    "TrainingCancelled": "training",
    "TrainResult": "training",
    "predict": "training",
    "train": "training",
}

if TYPE_CHECKING:
    from ionsieve_core.ml.bundle import FORMAT_VERSION, ModelBundle, load_bundle, save_bundle
    from ionsieve_core.ml.cv import grouped_folds
    from ionsieve_core.ml.default_score import (
        default_binary_scores,
        default_context_scores,
        estimate_sample_mask,
    )
    from ionsieve_core.ml.metrics import compute_metrics
    from ionsieve_core.ml.params import TrainParams
    from ionsieve_core.ml.preprocess import prepare
    from ionsieve_core.ml.training import TrainingCancelled, TrainResult, predict, train


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ionsieve_core.ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ionsieve_core.ml.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


def make_model(*args, **kwargs):
    """See ionsieve_core.ml.models.make_model (imported lazily: Keras is slow to import)."""
    from ionsieve_core.ml.models import make_model as _make

    return _make(*args, **kwargs)


__all__ = [
    "FORMAT_VERSION",
    "ModelBundle",
    "TrainParams",
    "TrainResult",
    "TrainingCancelled",
    "compute_metrics",
    "default_binary_scores",
    "default_context_scores",
    "estimate_sample_mask",
    "grouped_folds",
    "load_bundle",
    "make_model",
    "predict",
    "prepare",
    "save_bundle",
    "train",
]
