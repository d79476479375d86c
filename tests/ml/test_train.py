from __future__ import annotations

import json

import numpy as np
import pytest

from ionsieve_core import ml
from tests.ml.conftest import TINY

PER_CLASS_KEYS = {"precision", "recall", "f1", "roc_auc", "support"}


def _check_metrics(m: dict, classes: list[str], n: int) -> None:
    json.dumps(m)  # stored in a JSONField
    assert {"overall", "per_fold", "per_group", "folds"} <= set(m)
    o = m["overall"]
    assert o["n"] == n and o["classes"] == classes
    assert set(o["per_class"]) == set(classes)
    for c in classes:
        assert set(o["per_class"][c]) >= PER_CLASS_KEYS
    for key in ("accuracy", "f1_macro"):
        assert 0 <= o[key] <= 1
    assert o["roc_auc"] is None or 0 <= o["roc_auc"] <= 1
    assert len(m["per_fold"]) == m["folds"]
    for g in m["per_group"].values():
        assert {"accuracy", "f1_macro"} <= set(g)


def test_it_trains_a_binary_model_that_ranks_an_easy_problem(binary_result, tiny_data):
    r = binary_result
    n = len(tiny_data.images)
    _check_metrics(r.metrics, ["off", "on"], n)
    assert r.oof_probabilities.shape == (n, 2)
    assert np.allclose(r.oof_probabilities.sum(axis=1), 1)
    assert r.metrics["overall"]["roc_auc"] > 0.8
    assert len(r.bundle.thresholds) == 2 and 0 < r.bundle.thresholds[0] < 1
    assert r.bundle.task == "binary" and r.bundle.classes == ["off", "on"]
    p = ml.predict(r.bundle, tiny_data.images[:7])
    assert p.shape == (7, 2) and np.all((p >= 0) & (p <= 1))


def test_it_reports_progress_per_epoch(binary_result):
    msgs = [m for _, m in binary_result.messages]
    assert "Fold 1/2, epoch 1/3" in msgs and "Final model, epoch 3/3" in msgs
    fractions = [f for f, _ in binary_result.messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def _subset(data, names=("s0", "s1", "s2")):
    sel = np.isin(data.groups, names)
    imgs = [a for a, s in zip(data.images, sel, strict=True) if s]
    ctx = [c for c, s in zip(data.contexts(), sel, strict=True) if s]
    return imgs, data.labels[sel], data.groups[sel], ctx


def test_it_trains_multiclass(tiny_data):
    imgs, y, groups, _ = _subset(tiny_data)
    y = y.copy()
    y[(y == 1) & (np.arange(len(y)) % 3 == 0)] = 2
    classes = ["off", "on", "other"]
    r = ml.train(imgs, y, groups, "multiclass", classes, ml.TrainParams(**{**TINY, "epochs": 1}))
    _check_metrics(r.metrics, classes, len(y))
    assert r.oof_probabilities.shape == (len(y), 3)
    assert np.allclose(r.oof_probabilities.sum(axis=1), 1, atol=1e-4)
    assert r.bundle.thresholds == [0.5, 0.5, 0.5]


def test_it_trains_multilabel_with_per_class_thresholds(tiny_data):
    imgs, labels, groups, _ = _subset(tiny_data)
    n = len(imgs)
    y = np.zeros((n, 3), np.float32)
    y[:, 0] = labels == 0
    y[:, 1] = labels == 1
    y[::7, 2] = 1  # a rare label, oversampled
    classes = ["off", "on", "rare"]
    r = ml.train(imgs, y, groups, "multilabel", classes, ml.TrainParams(**{**TINY, "epochs": 1}))
    _check_metrics(r.metrics, classes, n)
    assert r.oof_probabilities.shape == (n, 3)
    assert len(r.bundle.thresholds) == 3 and all(0 < t < 1 for t in r.bundle.thresholds)


def test_it_stops_when_asked(tiny_data):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(ml.TrainingCancelled):
        ml.train(
            tiny_data.images,
            tiny_data.labels,
            tiny_data.groups,
            "binary",
            ["off", "on"],
            ml.TrainParams(**TINY),
            should_stop=should_stop,
        )
    assert len(calls) == 2


def test_it_says_so_when_all_images_come_from_one_dataset(tiny_data):
    sel = tiny_data.groups == "s0"
    imgs = [a for a, s in zip(tiny_data.images, sel, strict=True) if s]
    r = ml.train(
        imgs,
        tiny_data.labels[sel],
        tiny_data.groups[sel],
        "binary",
        ["off", "on"],
        ml.TrainParams(**{**TINY, "epochs": 1}),
    )
    assert any("one dataset" in n for n in r.notes)


def test_it_trains_with_the_context_channel(tiny_data):
    imgs, y, groups, ctx = _subset(tiny_data, ("s3", "s4"))
    r = ml.train(
        imgs,
        y,
        groups,
        "binary",
        ["off", "on"],
        ml.TrainParams(**{**TINY, "epochs": 1, "context": True}),
        contexts=ctx,
    )
    assert r.bundle.input_shape == (24, 24, 2) and r.bundle.params.context
    assert ml.predict(r.bundle, imgs[:3], contexts=ctx[:3]).shape == (3, 2)
