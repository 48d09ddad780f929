"""Whole zoo networks through the peer engines, on bnnbench's weights.

build_keras() writes a zoo spec (bnnbench.models.zoo) as a tf.keras model
(legacy Keras 2, as larq 0.14 and LCE's converter need) and loads the
tensors of bnnbench.models.weights into it; tensors_from_keras() is its
inverse, the one exporter from Keras weights to bnnbench's tensor format.
prepare_net() converts that model for one engine and returns the timed call:

- "net_lce": binary convs are larq QuantConv2D (ste_sign on input and kernel,
  pad_values=1, so padding pixels read +1 as bnnbench's binary layers do),
  binary dense layers larq QuantDense; converted by
  larq_compute_engine.convert_keras_model and run by LCE's interpreter.
- "net_tflite_float": the float twin (every weight layer float), converted by
  tf.lite.TFLiteConverter and run by tf.lite.Interpreter (XNNPACK, the default
  delegate for float models).

The semantics every engine follows (padding, sign(0) = +1, where ReLU goes,
batch norm as scale * x + bias, NHWC flattening) are the zoo's; where Keras
has no layer that computes them exactly, the choice is written at the layer.
"""
import hashlib

import numpy as np

from ...errors import BnnbenchError
from ...models import numpy_net, zoo
from .engine import import_tensorflow, native_stderr_quiet

ENGINES = ("net_lce", "net_tflite_float")   # named and checked in peers/__init__.py

# Keras' BatchNormalization computes gamma * (x - mean) / sqrt(var + eps) + beta;
# moving_variance = 1 - eps makes the divisor 1 (to float32 rounding), so the
# layer is scale * x + bias and the converters fold it (LCE into the bconv).
BN_EPSILON = 1e-3

_CACHE = {}          # converted flatbuffers, newest last
_CACHE_SIZE = 8
_LAYERS = {}


# ----------------------------------------------------------- spec -> Keras

def relu_after(model, float_twin=False):
    """Names of the layers a ReLU follows: the rule of the numpy reference,
    which every engine shares (after every float weight layer but the last,
    or after the BatchNorm that directly follows and reads it)."""
    return numpy_net.relu_layers(model, numpy_net.weight_flags(model, float_twin))


def _custom_layers(tf):
    """Two small layers Keras lacks, defined once TensorFlow is imported."""
    if _LAYERS:
        return _LAYERS["classes"]

    class ConstantPad2D(tf.keras.layers.Layer):
        """p pixels of a constant on every side (+1 before a binary conv,
        -inf before a max pool); ZeroPadding2D only pads zeros."""

        def __init__(self, pad, value, **kwargs):
            super().__init__(**kwargs)
            self.pad, self.value = int(pad), float(value)

        def call(self, x):
            p = self.pad
            return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=self.value)

        def get_config(self):
            return {**super().get_config(), "pad": self.pad, "value": self.value}

    class ChannelScale(tf.keras.layers.Layer):
        """A learnable per-channel multiply (zoo Scale(learnable=True))."""

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(int(input_shape[-1]),),
                                         initializer="ones", trainable=True)

        def call(self, x):
            return x * self.scale

    _LAYERS["classes"] = (ConstantPad2D, ChannelScale)
    return _LAYERS["classes"]


def _binary_padding(layer):
    """Keras padding of a binary conv and the one-padding put before it."""
    if layer.padding == "same":
        return "same", 0
    p = layer.padding
    if p == 0:
        return "valid", 0
    if layer.stride == 1 and 2 * p == layer.kernel - 1:
        return "same", 0     # symmetric, so Keras' 'same' with pad_values=1 is exact
    return "valid", p        # e.g. 3x3 stride 2 pad 1: 'same' would pad bottom/right only


def build_keras(model, tensors, float_twin=False, batch_size=None):
    """A tf.keras Model of zoo spec `model` holding `tensors`
    (bnnbench.models.weights.Tensor list); input NHWC (H, W, C), output the
    logits [B, classes]. float_twin=True makes every weight layer float."""
    tf = import_tensorflow()
    flags = zoo.binary_flags(model)
    if not float_twin and any(flags.values()):
        import larq as lq
    ConstantPad2D, ChannelScale = _custom_layers(tf)
    K = tf.keras.layers
    relus = relu_after(model, float_twin)
    c, h, w = model.input_shape
    inp = tf.keras.Input(shape=(h, w, c), batch_size=batch_size, name="input")
    outs = {zoo.INPUT: inp}
    prev = zoo.INPUT
    keras_layers = {}
    for layer in model.layers:
        where = f"{model.name}.{layer.name}"
        if isinstance(layer, zoo.Add):
            x = K.Add(name=layer.name)([outs[s] for s in layer.srcs])
            outs[layer.name] = x
            prev = layer.name
            continue
        x = outs[layer.src or prev]
        binary = flags.get(layer.name, False) and not float_twin
        if isinstance(layer, zoo.Conv):
            k, s = (layer.kernel, layer.kernel), (layer.stride, layer.stride)
            if binary:
                padding, ones = _binary_padding(layer)
                if ones:
                    x = ConstantPad2D(ones, 1.0, name=f"{layer.name}.pad")(x)
                kl = lq.layers.QuantConv2D(
                    layer.out_channels, k, strides=s, padding=padding, pad_values=1.0,
                    use_bias=layer.bias, input_quantizer="ste_sign",
                    kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                    name=layer.name)
            else:
                padding = layer.padding
                if padding != "same":
                    if padding:
                        x = K.ZeroPadding2D(padding, name=f"{layer.name}.pad")(x)
                    padding = "valid"
                kl = K.Conv2D(layer.out_channels, k, strides=s, padding=padding,
                              use_bias=layer.bias, name=layer.name)
        elif isinstance(layer, zoo.Dense):
            if len(x.shape) > 2:
                x = K.Flatten(name=f"{layer.name}.flatten")(x)   # NHWC order: (h, w, c)
            if binary:
                kl = lq.layers.QuantDense(
                    layer.out_features, use_bias=layer.bias, input_quantizer="ste_sign",
                    kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                    name=layer.name)
            else:
                kl = K.Dense(layer.out_features, use_bias=layer.bias, name=layer.name)
        elif isinstance(layer, zoo.DepthwiseConv):
            padding = layer.padding
            if padding != "same":
                if padding:
                    x = K.ZeroPadding2D(padding, name=f"{layer.name}.pad")(x)
                padding = "valid"
            kl = K.DepthwiseConv2D(layer.kernel, strides=layer.stride, padding=padding,
                                   use_bias=layer.bias, name=layer.name)
        elif isinstance(layer, zoo.ReLU):
            kl = K.ReLU(name=layer.name)
        elif isinstance(layer, zoo.BatchNorm):
            kl = K.BatchNormalization(epsilon=BN_EPSILON, name=layer.name)
        elif isinstance(layer, zoo.Pool):
            if layer.padding:
                if layer.kind == "avg":
                    raise BnnbenchError(f"{where}: a padded average pool (counting only real "
                                        f"pixels) has no Keras layer")
                x = ConstantPad2D(layer.padding, -np.inf, name=f"{layer.name}.pad")(x)
            cls = K.MaxPool2D if layer.kind == "max" else K.AveragePooling2D
            kl = cls(layer.kernel, layer.stride, padding="valid", name=layer.name)
        elif isinstance(layer, zoo.Scale):
            kl = (ChannelScale(name=layer.name) if layer.learnable
                  else K.Rescaling(1 / 256, name=layer.name))
        elif isinstance(layer, zoo.Dropout):
            outs[layer.name] = x     # identity at inference
            prev = layer.name
            continue
        else:
            raise BnnbenchError(f"{where}: no Keras layer for {type(layer).__name__}")
        x = kl(x)
        keras_layers[layer.name] = kl
        if layer.name in relus:
            x = K.ReLU(name=f"{layer.name}.relu")(x)
        outs[layer.name] = x
        prev = layer.name
    out = outs[prev]
    if len(out.shape) > 2:
        out = K.Flatten(name="logits")(out)
    net = tf.keras.Model(inp, out, name=model.name.replace("-", "_"))
    _load(model, net, keras_layers, tensors)
    return net


def _load(model, net, keras_layers, tensors):
    by_name = {t.name: t.values for t in tensors}
    used = set()

    def get(name):
        if name not in by_name:
            raise BnnbenchError(f"{model.name}: tensor {name!r} is missing")
        used.add(name)
        return np.asarray(by_name[name], dtype=np.float32)

    for layer in model.layers:
        kl = keras_layers.get(layer.name)
        if kl is None:
            continue
        if isinstance(layer, zoo.Conv):
            ws = [get(f"{layer.name}.weight").transpose(2, 3, 1, 0)]   # OIHW -> HWIO
            if layer.bias:
                ws.append(get(f"{layer.name}.bias"))
        elif isinstance(layer, zoo.DepthwiseConv):
            # (C, 1, k, k) -> Keras' (k, k, C, 1)
            ws = [get(f"{layer.name}.weight").transpose(2, 3, 0, 1)]
            if layer.bias:
                ws.append(get(f"{layer.name}.bias"))
        elif isinstance(layer, zoo.Dense):
            ws = [get(f"{layer.name}.weight").T]                       # (out, in) -> (in, out)
            if layer.bias:
                ws.append(get(f"{layer.name}.bias"))
        elif isinstance(layer, zoo.BatchNorm):
            scale = get(f"{layer.name}.scale")
            ws = [scale, get(f"{layer.name}.bias"), np.zeros_like(scale),
                  np.full_like(scale, 1 - BN_EPSILON)]
        elif isinstance(layer, zoo.Scale) and layer.learnable:
            ws = [get(f"{layer.name}.scale")]
        else:
            continue
        kl.set_weights([np.ascontiguousarray(w) for w in ws])
    extra = set(by_name) - used
    if extra:
        raise BnnbenchError(f"{model.name}: tensors {', '.join(sorted(extra))} belong to no layer")


def tensors_from_keras(model, keras_model):
    """The inverse of build_keras' weight loading: bnnbench Tensors (layer
    order, float32, OIHW / (out, in)) from a Keras model of `model`, batch
    norm folded to scale * x + bias from its moving statistics."""
    from ...models.weights import Tensor
    flags = zoo.binary_flags(model)
    tensors = []
    for layer in model.layers:
        if isinstance(layer, (zoo.Add, zoo.Pool, zoo.Dropout, zoo.ReLU)):
            continue
        if isinstance(layer, zoo.Scale) and not layer.learnable:
            continue
        ws = keras_model.get_layer(layer.name).get_weights()
        binary = flags.get(layer.name, False)

        def add(suffix, values, is_binary=False):
            tensors.append(Tensor(f"{layer.name}.{suffix}", layer.name,
                                  np.ascontiguousarray(values, dtype=np.float32), is_binary))
        if isinstance(layer, zoo.Conv):
            add("weight", ws[0].transpose(3, 2, 0, 1), binary)       # HWIO -> OIHW
            if layer.bias:
                add("bias", ws[1])
        elif isinstance(layer, zoo.DepthwiseConv):
            add("weight", ws[0].transpose(2, 3, 0, 1))               # -> (C, 1, k, k)
            if layer.bias:
                add("bias", ws[1])
        elif isinstance(layer, zoo.Dense):
            add("weight", ws[0].T, binary)
            if layer.bias:
                add("bias", ws[1])
        elif isinstance(layer, zoo.BatchNorm):
            bn = keras_model.get_layer(layer.name)
            gamma, beta, mean, var = ws
            scale = gamma / np.sqrt(var + bn.epsilon)
            add("scale", scale)
            add("bias", beta - mean * scale)
        elif isinstance(layer, zoo.Scale):
            add("scale", ws[0])
    return tensors


# --------------------------------------------------------------- engines

def _digest(tensors):
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.name.encode())
        h.update(np.ascontiguousarray(t.values, dtype=np.float32).tobytes())
    return h.hexdigest()


def flatbuffer(engine, model, tensors, batch_size):
    """The converted model (bytes) of `engine`; cached per weights and batch."""
    key = (engine, model, _digest(tensors), batch_size)
    if key not in _CACHE:
        tf = import_tensorflow()
        if engine == "net_lce":
            import larq_compute_engine as lce
            net = build_keras(model, tensors, float_twin=False, batch_size=batch_size)
            with native_stderr_quiet():
                fb = lce.convert_keras_model(net)
        elif engine == "net_tflite_float":
            net = build_keras(model, tensors, float_twin=True, batch_size=batch_size)
            with native_stderr_quiet():
                fb = tf.lite.TFLiteConverter.from_keras_model(net).convert()
        else:
            raise BnnbenchError(f"unknown network engine {engine!r}; "
                                f"known: {', '.join(ENGINES)}")
        if len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = bytes(fb)
    return _CACHE[key]


def prepare_net(engine, model, tensors, x, threads):
    """The timed call of `model` with `tensors` on `engine` for input x (NHWC
    float32 [B, H, W, C]): run() -> logits float32 [B, classes], copying the
    input in and the output out. run.deployed_bytes is the flatbuffer's size,
    run.held_bytes what the call keeps alive."""
    if engine not in ENGINES:
        raise BnnbenchError(f"unknown network engine {engine!r}; known: {', '.join(ENGINES)}")
    c, h, w = model.input_shape
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (h, w, c):
        raise BnnbenchError(f"{model.name}: input must be [B, {h}, {w}, {c}] (NHWC), "
                            f"not {list(x.shape)}")
    tf = import_tensorflow()   # first: importing LCE imports TensorFlow
    fb = flatbuffer(engine, model, tensors, x.shape[0])
    if engine == "net_lce":
        from larq_compute_engine.tflite.python.interpreter import Interpreter
        with native_stderr_quiet():
            lite = Interpreter(fb, num_threads=threads).interpreter
        out = np.empty(lite.output_shapes[0], dtype=np.float32)

        def run():
            out[...] = lite.predict([x])[0]
            return out
    else:
        with native_stderr_quiet():
            interp = tf.lite.Interpreter(model_content=fb, num_threads=threads)
            interp.allocate_tensors()
        inp = interp.get_input_details()[0]["index"]
        outp = interp.get_output_details()[0]
        out = np.empty(outp["shape"], dtype=np.float32)
        out_index = outp["index"]

        def run():
            interp.set_tensor(inp, x)
            interp.invoke()
            out[...] = interp.get_tensor(out_index)
            return out
    run.deployed_bytes = len(fb)
    run.held_bytes = len(fb) + 2 * x.nbytes + 2 * out.nbytes
    return run
