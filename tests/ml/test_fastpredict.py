"""The numpy plan of compact models (ionsieve_core/ml/fastpredict.py): the same scores and
embeddings as TensorFlow, no TensorFlow imported on the default scoring path, stale plans
ignored, and preprocessing without TensorFlow giving TensorFlow's numbers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.ml import fastpredict
from ionsieve_core.ml.bundle import DEFAULT_MODEL_PATH, default_bundle, default_score_model
from ionsieve_core.ml.preprocess import prepare, square_resize

ROOT = Path(__file__).resolve().parents[2]
PLAN = fastpredict.plan_path_for(DEFAULT_MODEL_PATH)


def images(n: int = 24, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(30, 50), (56, 56), (121, 90), (7, 200)]
    return [(rng.random(shapes[i % 4]) * (rng.random() > 0.3)).astype(np.float32) for i in range(n)]


def test_it_ships_a_plan_made_from_the_shipped_model():
    assert fastpredict.load_plan(PLAN, source=DEFAULT_MODEL_PATH) is not None


def test_it_scores_and_embeds_as_tensorflow_does():
    import keras

    from ionsieve_core.ml.training import predict

    plan = fastpredict.load_plan(PLAN)
    bundle = default_bundle(None)
    arrays = images()
    assert np.abs(plan.predict(arrays) - predict(bundle, arrays)).max() < 1e-5
    probs, emb = plan.predict_and_embed(arrays)
    model = bundle.models[0]
    sub = keras.Model(model.inputs, model.get_layer("probabilities").input)
    expected = sub(prepare(arrays, 56, 1), training=False).numpy()
    assert emb.shape == expected.shape and np.abs(emb - expected).max() < 1e-4
    assert np.abs(probs - predict(bundle, arrays)).max() < 1e-5
    assert predict(plan, arrays).shape == (len(arrays), 2)  # training.predict takes a plan too


def test_it_averages_the_eight_views_with_test_time_augmentation(tmp_path):
    from ionsieve_core.ml.bundle import load_bundle
    from ionsieve_core.ml.training import predict

    bundle = load_bundle(DEFAULT_MODEL_PATH)
    bundle.params.tta = True
    plan = fastpredict.load_plan(PLAN)
    plan.tta = True
    arrays = images(16, seed=3)
    assert np.abs(plan.predict(arrays) - predict(bundle, arrays)).max() < 1e-5


def test_it_ignores_a_plan_made_from_another_model_file(tmp_path):
    model = tmp_path / "m.zip"
    shutil.copy(DEFAULT_MODEL_PATH, model)
    out = fastpredict.export_plan(default_bundle(None), model)
    assert out == tmp_path / "m.plan.npz" and fastpredict.load_plan(out, source=model) is not None
    assert isinstance(default_score_model(model), fastpredict.Plan)
    with open(model, "ab") as f:  # the model was replaced (retrained, edited) after the plan
        f.write(b"\0")
    assert fastpredict.load_plan(out, source=model) is None
    assert not isinstance(default_score_model(model), fastpredict.Plan)  # the Keras bundle instead
    (tmp_path / "m.plan.npz").write_bytes(b"not a plan")
    assert fastpredict.load_plan(out) is None


def test_it_scores_a_dataset_by_default_without_importing_tensorflow():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from ionsieve_core.ml import default_binary_scores\n"
        "rng = np.random.default_rng(0)\n"
        "stack = rng.random((30, 40, 50)).astype(np.float32)\n"
        "stack[:, :10] = 0\n"
        "p = default_binary_scores(stack, None)\n"
        "print(p.shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "(30, 2) False False"


def test_it_embeds_multichannel_pictures_without_importing_tensorflow():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from ionsieve_core.ml.active import default_embeddings\n"
        "rng = np.random.default_rng(0)\n"
        "e = default_embeddings([rng.random((30, 40, 3)).astype(np.float32) for _ in range(4)])\n"
        "print(e.shape, 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "(4, 768) False"


@pytest.mark.parametrize(
    "shape",
    [
        (5, 120, 150, 1),
        (3, 30, 40, 1),
        (2, 56, 56, 1),
        (2, 7, 300, 1),
        (4, 200, 90, 3),
        (2, 1, 1, 1),
        (2, 57, 57, 2),
        (3, 111, 113, 1),
    ],
)
def test_it_resizes_as_tensorflow_did(shape):
    import tensorflow as tf

    batch = np.random.default_rng(1).random(shape).astype(np.float32)
    g, h, w, c = shape
    f = max(1, max(h, w) // 56)
    ref = batch
    if f > 1:  # the former TensorFlow implementation
        x = batch[:, : max(f, h - h % f), : max(f, w - w % f)]
        x = np.pad(x, ((0, 0), (0, max(0, f - x.shape[1])), (0, max(0, f - x.shape[2])), (0, 0)))
        ref = tf.nn.avg_pool2d(x, f, f, "VALID").numpy()
    s = max(ref.shape[1:3])
    square = np.zeros((g, s, s, c), np.float32)
    y0, x0 = (s - ref.shape[1]) // 2, (s - ref.shape[2]) // 2
    square[:, y0 : y0 + ref.shape[1], x0 : x0 + ref.shape[2]] = ref
    if s != 56:
        square = np.clip(tf.image.resize(square, (56, 56), method="bilinear").numpy(), 0, 1)
    assert np.abs(square_resize(batch, 56) - square).max() < 1e-5


@pytest.mark.parametrize("channels", [1, 3, 16])
def test_it_unfolds_patches_as_one_copy_per_tap_did(channels):
    # The strided-view unfolding gives the very patches of the tap-by-tap copy: same product.
    rng = np.random.default_rng(channels)
    x = rng.random((3, 9, 11, channels), dtype=np.float32)
    kernel = rng.standard_normal((3, 3, channels, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.empty((3, 9, 11, 3, 3, channels), np.float32)
    for dy in range(3):
        for dx in range(3):
            cols[:, :, :, dy, dx, :] = xp[:, dy : dy + 9, dx : dx + 11, :]
    want = (cols.reshape(-1, 9 * channels) @ kernel.reshape(9 * channels, 5) + bias).reshape(3, 9, 11, 5)
    np.testing.assert_array_equal(fastpredict._conv_same(x, kernel, bias), want)
