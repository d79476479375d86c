from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ionsieve_core import ml


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcdefgh"), min_size=2, max_size=60), st.integers(2, 8))
def test_it_never_puts_a_group_on_both_sides(groups, n_folds):
    groups = np.asarray(groups)
    folds = ml.grouped_folds(groups, n_folds)
    n_groups = len(set(groups))
    assert len(folds) == (min(n_folds, n_groups) if n_groups > 1 else len(folds))
    seen_val = []
    for train, val in folds:
        assert len(val) > 0
        if n_groups > 1:
            assert not set(groups[train]) & set(groups[val])
        assert not set(train) & set(val)
        assert len(train) + len(val) == len(groups)
        seen_val += list(val)
    assert sorted(seen_val) == list(range(len(groups)))  # every image predicted out of fold once


def test_it_uses_one_fold_per_group_when_groups_are_few():
    folds = ml.grouped_folds(np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 5), 5)
    assert len(folds) == 3


def test_it_stratifies_within_a_single_group():
    y = np.array([0] * 6 + [1] * 6)
    folds = ml.grouped_folds(np.array(["only"] * 12), 3, y=y)
    assert len(folds) == 3
    for _, val in folds:
        assert set(y[val]) == {0, 1}
