"""Training a zoo model's float twin and binary twin with Larq, as Larq users
do, for `bnnbench accuracy --model` (bnnbench.models.accuracy drives it).

Both twins are networks.build_keras() of the same spec (so the exporter,
networks.tensors_from_keras, reads them back layer for layer): binary convs
and dense layers are larq QuantConv2D / QuantDense with ste_sign on input
and kernel (the straight-through estimator), latent float weights clipped
by weight_clip; the float twin has every weight layer float. Initial
weights are Glorot-uniform (Keras' default) from a numpy seed, batch norm
gamma 1 / beta 0; Adam; sparse softmax cross-entropy on the logits.

BatchNorm momentum is 0.9 instead of Keras' 0.99: the data sets here can be
a few dozen batches per epoch, and with 0.99 the moving statistics (what
inference and the exporter use) would still be mostly their initial values
after a short run.

Larq's own evaluation is the Keras model's predict() (inference mode:
moving statistics, ste_sign as sign with sign(0) = +1), argmax per image.
"""
import importlib.util
import time

import numpy as np

from ...errors import BnnbenchError
from . import INSTALL_HINT
from .engine import import_tensorflow, native_stderr_quiet

BN_MOMENTUM = 0.9
EVAL_BATCH = 256
REQUIRES = ("tensorflow", "larq")


def missing():
    """None if Larq training can run here, else a one-line reason (checked
    without importing TensorFlow)."""
    for module in REQUIRES:
        if importlib.util.find_spec(module) is None:
            return f"Larq is not installed ({module} missing): {INSTALL_HINT}"
    return None


def init_tensors(model, seed):
    """bnnbench Tensors to start training from: weight layers Glorot-uniform
    (fan_in = K, fan_out = out channels x kernel area), biases 0, batch norm
    scale 1 and bias 0, learnable scales 1."""
    from ...models import zoo
    from ...models.weights import Tensor, model_tensors
    rng = np.random.default_rng(seed)
    layers = {l.name: l for l in model.layers}
    out = []
    for t in model_tensors(model, seed):
        shape = t.values.shape
        suffix = t.name.rsplit(".", 1)[1]
        layer = layers[t.layer]
        if suffix == "weight":
            fan_in = int(np.prod(shape[1:]))
            fan_out = shape[0] * (layer.kernel ** 2 if isinstance(layer, zoo.Conv) else 1)
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, shape)
        elif suffix == "scale":
            values = np.ones(shape)
        else:
            values = np.zeros(shape)
        out.append(Tensor(t.name, t.layer, values.astype(np.float32), t.binary))
    return out


def _configure(tf, seed):
    tf.keras.utils.set_random_seed(seed)   # the batch order of fit()


def train(model, x, y, n_classes, float_twin, epochs, seed=0, batch_size=32, lr=0.005):
    """A trained Keras model of zoo spec `model` (its logits width must be
    n_classes); returns (keras_model, seconds)."""
    from .networks import build_keras
    tf = import_tensorflow()
    _configure(tf, seed)
    net = build_keras(model, init_tensors(model, seed), float_twin=float_twin)
    if net.output_shape[-1] != n_classes:
        raise BnnbenchError(f"{model.name}: {net.output_shape[-1]} logits for "
                            f"{n_classes} classes")
    for layer in net.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    net.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=lr),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    t0 = time.perf_counter()
    with native_stderr_quiet():
        net.fit(np.asarray(x, np.float32), np.asarray(y, np.int64), batch_size=batch_size,
                epochs=epochs, shuffle=True, verbose=0)
    return net, time.perf_counter() - t0


def predict(net, x):
    """Larq's own evaluation: the Keras model's logits (inference mode)."""
    with native_stderr_quiet():
        return net.predict(np.asarray(x, np.float32), batch_size=EVAL_BATCH, verbose=0)


def binary_inputs(model, net, x):
    """{binary layer: the float input Keras feeds its ste_sign, flattened
    per image} on x: where the runtime's input bits can be compared."""
    from ...models import zoo
    tf = import_tensorflow()
    names = [n for n, b in zoo.binary_flags(model).items() if b]
    if not names:
        return {}
    probe = tf.keras.Model(net.input, [net.get_layer(n).input for n in names])
    with native_stderr_quiet():
        outs = probe.predict(np.asarray(x, np.float32), batch_size=EVAL_BATCH, verbose=0)
    if len(names) == 1:
        outs = [outs]
    return {n: o.reshape(len(o), -1) for n, o in zip(names, outs)}


def bn_threshold_disagreements(model, net, tensors):
    """Where the runtime's threshold fold could decide a bit differently
    from Keras: for each BatchNorm that directly reads a binary layer
    without bias, Keras' own BN layer (inference mode, the rank it has in
    the model) is evaluated at every integer the binary layer can output,
    y in [-K, K], and sign(BN(y)) >= 0 is compared with the runtime's
    float64 y * scale + bias >= 0 on the exported tensors. Returns
    {bn layer checked: how many of its channels decide some y differently}."""
    from ...models import zoo
    tf = import_tensorflow()
    flags = zoo.binary_flags(model)
    infos = {i.name: i for i in zoo.resolve(model)}
    by_name = {t.name: t.values for t in tensors}
    prev = None
    out = {}
    for layer in model.layers:
        src = getattr(layer, "src", None) or prev
        prev = layer.name
        if not isinstance(layer, zoo.BatchNorm) or not flags.get(src, False):
            continue
        w = next(l for l in model.layers if l.name == src)
        if w.bias:
            continue
        k = infos[src].gemm[1]
        c = infos[layer.name].out_shape[0]
        ys = np.arange(-k, k + 1, dtype=np.float32)
        grid = np.repeat(ys[:, None], c, axis=1)
        if len(infos[layer.name].out_shape) == 3:
            grid = grid[:, None, None, :]
        keras_bits = np.asarray(net.get_layer(layer.name)(tf.constant(grid), training=False))
        keras_bits = keras_bits.reshape(len(ys), c) >= 0
        scale = by_name[f"{layer.name}.scale"].astype(np.float64)
        bias = by_name[f"{layer.name}.bias"].astype(np.float64)
        ours = ys.astype(np.float64)[:, None] * scale + bias >= 0
        out[layer.name] = int((keras_bits != ours).any(axis=0).sum())
    return out
