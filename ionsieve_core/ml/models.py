"""Network builders: the compact METASPACE CNN and keras.applications backbones.

Backbones are always built with weights=None (this server never downloads); a local weights
file can be loaded instead. Augmentation is a Keras layer applied in the tf.data pipeline,
not inside the saved model, so inference graphs stay lean and CPU training overlaps it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Input range each backbone family was trained with (only matters with pretrained weights).
_FAMILY = {"resnet50": "caffe", "vgg16": "caffe", "densenet121": "torch", "inceptionresnetv2": "tf"}


def _backbone(arch: str):
    apps = keras.applications
    return {
        "resnet50": apps.ResNet50,
        "densenet121": apps.DenseNet121,
        "vgg16": apps.VGG16,
        "inceptionresnetv2": apps.InceptionResNetV2,
    }[arch]


def output_activation(task: str) -> str:
    return "sigmoid" if task == "multilabel" else "softmax"


def make_model(
    input_shape: tuple[int, int, int],
    num_classes: int,
    arch: str = "compact",
    task: str = "binary",
    weights_path: str | None = None,
) -> keras.Model:
    """An uncompiled model mapping (s, s, c) images in 0..1 to class probabilities."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    act = output_activation(task)
    if arch == "compact":
        # METASPACE write-up: 4 conv (BN before ReLU), max-pool after every second, 3 dense.
        x = inputs
        for filters, pool in ((16, 3), (32, 3)):
            for _ in range(2):
                x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
                x = keras.layers.BatchNormalization()(x)
                x = keras.layers.Activation("relu")(x)
            x = keras.layers.MaxPooling2D(pool)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(256, activation="relu")(x)
        x = keras.layers.Dense(256, activation="relu")(x)
        outputs = keras.layers.Dense(num_classes, activation=act, name="probabilities")(x)
        return keras.Model(inputs, outputs, name="compact")

    channels = int(input_shape[-1])
    x = inputs
    if weights_path:
        # Pretrained filters expect 3 channels in their own range: a learned 1x1 conv maps
        # any channel count to 3, then the family's scaling is applied.
        if channels != 3:
            x = keras.layers.Conv2D(3, 1, name="to_rgb")(x)
        family = _FAMILY[arch]
        if family == "caffe":
            x = keras.layers.Rescaling(255.0, offset=-120.0)(x)
        elif family == "torch":
            x = keras.layers.Rescaling(1 / 0.226, offset=-0.45 / 0.226)(x)
        else:
            x = keras.layers.Rescaling(2.0, offset=-1.0)(x)
        base_shape = (*tuple(input_shape[:2]), 3)
    else:
        base_shape = tuple(input_shape)
    base = _backbone(arch)(include_top=False, weights=None, input_shape=base_shape, pooling="avg")
    if weights_path:
        base.load_weights(weights_path)
    x = base(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(num_classes, activation=act, name="probabilities")(x)
    return keras.Model(inputs, outputs, name=arch)


def compile_model(
    model: keras.Model, task: str, learning_rate: float, momentum: float, label_smoothing: float = 0.0
) -> keras.Model:
    if task == "multilabel":
        loss = keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    # jit_compile=False: XLA costs ~20 s per fit on CPU and barely speeds up these small nets.
    opt = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    model.compile(optimizer=opt, loss=loss, jit_compile=False)
    return model


@keras.saving.register_keras_serializable(package="ionsieve")
class RandomDihedral(keras.layers.Layer):
    """Random flip + random 90 degree rotation per image: the 8 symmetries of a square.

    An ion image means the same thing in any of these orientations (the slide can be
    mounted either way), so they are free extra training data.
    """

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self._gen = (
            tf.random.Generator.from_seed(seed)
            if seed is not None
            else tf.random.Generator.from_non_deterministic_state()
        )

    def call(self, x, training: bool = True):
        if not training:
            return x
        n = tf.shape(x)[0]
        k = self._gen.uniform([n], 0, 4, dtype=tf.int32)
        flip = self._gen.uniform([n], 0, 2, dtype=tf.int32)
        rots = tf.stack([x, tf.image.rot90(x, 1), tf.image.rot90(x, 2), tf.image.rot90(x, 3)], axis=0)
        x = tf.gather_nd(rots, tf.stack([k, tf.range(n)], axis=1))
        return tf.where(tf.reshape(flip == 1, [-1, 1, 1, 1]), tf.image.flip_left_right(x), x)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def dihedral_views(x):
    """The 8 dihedral transforms of a square batch (for test-time augmentation)."""
    views = []
    for k in range(4):
        r = tf.image.rot90(x, k)
        views += [r, tf.image.flip_left_right(r)]
    return views


def inference_graph(model: keras.Model):
    """x -> probabilities for inference only (call inside a tf.function).

    For the compact model the batch norms are folded into the convolution kernels and biases
    (frozen constants): the graph becomes conv + bias + relu, which TensorFlow's oneDNN
    kernels fuse; on 2 CPU cores that runs ~2x faster than model(x) even under XLA, and
    needs no XLA compilation. Outputs match model(x, training=False) to ~1e-7. Any other
    model (or an unexpected layer) is called as is.
    """
    steps = _folded_steps(model)
    if steps is None:
        return lambda x: model(x, training=False)
    return lambda x: run_steps(steps, x)


def run_steps(steps: list, x):
    """Apply folded steps (from _folded_steps) to a batch: the plain graph of the compact model."""
    for kind, a in steps:
        if kind == "conv":
            x = tf.nn.bias_add(tf.nn.conv2d(x, a[0], a[2], a[3]), a[1])
        elif kind == "act":
            x = a(x)
        elif kind == "pool":
            x = tf.nn.max_pool2d(x, a[0], a[1], a[2])
        elif kind == "flatten":
            x = tf.reshape(x, [tf.shape(x)[0], -1])
        else:  # dense
            x = a[2](tf.matmul(x, a[0]) + a[1])
    return x


def _folded_steps(model: keras.Model) -> list | None:
    import numpy as np

    if model.name != "compact":
        return None
    steps: list = []
    conv = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Conv2D):
            if conv is not None or layer.use_bias or layer.dilation_rate != (1, 1) or layer.groups != 1:
                return None
            conv = layer
        elif isinstance(layer, keras.layers.BatchNormalization):
            if conv is None or layer.axis not in (-1, [-1], 3, [3]):
                return None
            s = layer.gamma.numpy() / np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
            kernel = (conv.kernel.numpy() * s).astype(np.float32)
            bias = (layer.beta.numpy() - layer.moving_mean.numpy() * s).astype(np.float32)
            steps.append(
                ("conv", (tf.constant(kernel), tf.constant(bias), list(conv.strides), conv.padding.upper()))
            )
            conv = None
        elif conv is not None:
            return None  # a conv not followed by its batch norm
        elif isinstance(layer, keras.layers.Activation):
            steps.append(("act", layer.activation))
        elif isinstance(layer, keras.layers.MaxPooling2D):
            steps.append(("pool", (list(layer.pool_size), list(layer.strides), layer.padding.upper())))
        elif isinstance(layer, keras.layers.Flatten):
            steps.append(("flatten", None))
        elif isinstance(layer, keras.layers.Dense):
            b = layer.bias.numpy() if layer.use_bias else np.zeros(layer.units, np.float32)
            steps.append(("dense", (tf.constant(layer.kernel.numpy()), tf.constant(b), layer.activation)))
        else:
            return None
    return steps if conv is None else None
