from __future__ import annotations

import keras
import pytest

from ionsieve_core import ml

SMALL = {"resnet50": 32, "densenet121": 32, "vgg16": 32, "inceptionresnetv2": 75}


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_it_builds_the_compact_model(channels):
    m = ml.make_model((56, 56, channels), 2)
    assert m.output_shape == (None, 2)
    # The METASPACE layout: 4 conv, 3 dense.
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in m.layers) == 4
    assert sum(isinstance(layer, keras.layers.Dense) for layer in m.layers) == 3


# InceptionResNetV2 takes ~4 s per build: one build (at its minimum input) covers it; the
# channel/task combinations go through the same code path for every backbone.
COMBOS = ((1, "binary", 2), (2, "multiclass", 3), (4, "multilabel", 5))


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_it_builds_every_backbone_with_any_channel_count(arch):
    for channels, task, k in COMBOS if arch != "inceptionresnetv2" else COMBOS[2:]:
        m = ml.make_model((SMALL[arch], SMALL[arch], channels), k, arch=arch, task=task)
        assert m.input_shape == (None, SMALL[arch], SMALL[arch], channels)
        assert m.output_shape == (None, k)
        keras.backend.clear_session()


def test_it_clamps_input_sizes_to_what_the_backbone_accepts():
    assert ml.TrainParams(arch="inceptionresnetv2", input_size=32).input_size == 75
    assert ml.TrainParams(arch="resnet50").input_size == 32
    assert ml.TrainParams().input_size == 56 and ml.TrainParams().epochs == 15


def test_the_inference_graph_folds_batch_norm_without_changing_outputs():
    import numpy as np
    import tensorflow as tf

    from ionsieve_core.ml.models import _folded_steps, inference_graph

    m = ml.make_model((24, 24, 2), 3)
    rng = np.random.default_rng(0)
    for layer in m.layers:  # trained-looking statistics, so folding has something to do
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3, c).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 2, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, c).astype("float32"))
    assert _folded_steps(m) is not None
    x = rng.random((5, 24, 24, 2)).astype("float32")
    got = tf.function(inference_graph(m))(x).numpy()
    np.testing.assert_allclose(got, m(x, training=False).numpy(), rtol=1e-4, atol=1e-5)
    backbone = ml.make_model((32, 32, 1), 2, arch="vgg16")
    assert _folded_steps(backbone) is None  # anything else is called as is
