"""The real-image helper (tests/ml/realimages.py) and bench_real's intervals."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _bench_real():
    spec = importlib.util.spec_from_file_location("bench_real", ROOT / "bench" / "bench_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_reads_every_real_labelled_image_without_matplotlib():
    code = (
        "import sys; from tests.ml.realimages import development_set, evaluation_set; "
        "d, e = development_set(), evaluation_set(); "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'; "
        "print(len(d.images), len(e.images), sorted(set(d.groups)), sorted(set(e.groups)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.split()[:2] == ["8", "34"]
    assert "dev:intsco" in out and "eval:api-example" in out and "eval:explore-off-sample-results" in out


def test_it_keeps_development_and_evaluation_images_apart():
    from tests.ml.realimages import development_set, evaluation_set

    d, e = development_set(), evaluation_set()
    assert (d.role, e.role) == ("development", "evaluation") and "not experts" in e.labelled_by
    assert not set(d.groups) & set(e.groups)
    for s in (d, e):
        for g in set(s.groups):
            ys = {int(y) for y, gg in zip(s.labels, s.groups, strict=True) if gg == g}
            assert ys == {0, 1}, f"{g} lacks a class"
        assert all(np.isfinite(a).mean() > 0.8 and a.ndim == 2 for a in s.images)


def test_it_gives_honest_intervals_on_few_images():
    b = _bench_real()
    lo, hi = b.wilson(8, 8)
    assert hi == 1.0 and 0.6 < lo < 0.7  # 8 of 8 right is not certainty
    is_off = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.7, 0.4])
    r = b.scores(is_off, p, np.full(8, 0.5), boot=500)
    assert r["n"] == 8 and (r["n_off"], r["n_on"]) == (4, 4)
    assert r["auc_ci"][0] < r["auc"] < r["auc_ci"][1] and r["auc_ci"][1] - r["auc_ci"][0] > 0.3
    assert r["accuracy"] == 0.75 and r["accuracy_ci"][0] < 0.75 < r["accuracy_ci"][1]
    many = b.scores(np.repeat(is_off, 20), np.repeat(p, 20), np.full(160, 0.5), boot=500)
    assert many["auc_ci"][1] - many["auc_ci"][0] < r["auc_ci"][1] - r["auc_ci"][0]
