"""Tiny synthetic problems and one shared tiny trained model (training is the slow part)."""

from __future__ import annotations

import pytest

from ionsieve_core import ml
from ionsieve_core.ml.pretraining import synthetic

TINY = {"input_size": 24, "epochs": 3, "folds": 2, "batch_size": 32, "learning_rate": 0.02}


@pytest.fixture(scope="session")
def tiny_data() -> synthetic.SyntheticData:
    return synthetic.make_data(n_datasets=6, ions=20, seed=11, size=(30, 48), modes=["blobs"])


@pytest.fixture(scope="session")
def binary_result(tiny_data):
    messages: list[tuple[float, str]] = []
    result = ml.train(
        tiny_data.images,
        tiny_data.labels,
        tiny_data.groups,
        "binary",
        tiny_data.classes,
        ml.TrainParams(**TINY),
        progress=lambda f, m: messages.append((f, m)),
    )
    result.messages = messages
    return result
