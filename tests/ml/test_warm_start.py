from __future__ import annotations

import numpy as np


def test_it_starts_binary_compact_models_from_the_shipped_model():
    from ionsieve_core.ml.bundle import default_bundle
    from ionsieve_core.ml.models import make_model
    from ionsieve_core.ml.training import warm_start

    shipped = default_bundle(None)
    assert shipped is not None, "the default model file must ship with the code"
    net = make_model(shipped.input_shape, 2, "compact", "binary")
    assert warm_start(net)
    for a, b in zip(net.get_weights(), shipped.models[0].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # A different shape (e.g. with a context channel) keeps its own random start.
    other = make_model((*shipped.input_shape[:2], 2), 2, "compact", "binary")
    assert not warm_start(other)
