from __future__ import annotations

import json

import numpy as np

from ionsieve_core import ml


def test_it_reports_none_auc_when_one_class_is_present():
    prob = np.array([[0.9, 0.1], [0.8, 0.2]])
    m = ml.compute_metrics(np.array([0, 0]), prob, "binary", ["off", "on"], groups=np.array(["a", "a"]))
    assert m["overall"]["roc_auc"] is None
    assert m["overall"]["per_class"]["off"]["support"] == 2
    json.dumps(m)


def test_it_uses_the_binary_threshold_on_class_zero():
    prob = np.array([[0.3, 0.7], [0.2, 0.8], [0.05, 0.95]])
    y = np.array([0, 0, 1])
    m = ml.compute_metrics(y, prob, "binary", ["off", "on"], thresholds=[0.1, 0.9])
    assert m["overall"]["accuracy"] == 1.0 and m["overall"]["roc_auc"] == 1.0
    assert m["overall"]["confusion_matrix"] == [[2, 0], [0, 1]]
