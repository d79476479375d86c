"""IonSieve's pure ML package: numpy, TensorFlow/Keras, scikit-learn and scikit-image only.

The Django side calls `from ionsieve_core import ml` then ml.train / ml.predict /
ml.save_bundle / ml.load_bundle / ml.default_binary_scores.
"""

from __future__ import annotations

import os

# Quiet TensorFlow's start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ionsieve_core.ml.bundle import FORMAT_VERSION, ModelBundle, load_bundle, save_bundle  # noqa: E402
from ionsieve_core.ml.cv import grouped_folds  # noqa: E402
from ionsieve_core.ml.default_score import (  # noqa: E402
    default_binary_scores,
    default_context_scores,
    estimate_sample_mask,
)
from ionsieve_core.ml.metrics import compute_metrics  # noqa: E402
from ionsieve_core.ml.params import TrainParams  # noqa: E402
from ionsieve_core.ml.preprocess import prepare  # noqa: E402
from ionsieve_core.ml.training import TrainingCancelled, TrainResult, predict, train  # noqa: E402


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
