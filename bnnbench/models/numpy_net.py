"""The plain numpy reference of a zoo model's forward pass.

It follows the semantics written out in bnnbench.models.network's docstring
(every engine does): float layers in float64, binary layers as exact
integers sign(x) (*) sign(W) with +1 padding (methods.verify.numpy_conv),
loops and sliding windows rather than speed. The runtime
(bnnbench.models.network) is checked against it.

The two rules every engine shares with this module live here too:
weight_flags() (which weight layers are binary, or none for the float twin)
and relu_layers() (after which layers a ReLU runs).
"""
import numpy as np

from ..methods.verify import numpy_conv, numpy_depthwise
from . import zoo

AFFINE = (zoo.BatchNorm, zoo.Scale, zoo.Dropout)   # per-channel, elementwise
FILTERS = zoo.WEIGHT_LAYERS + (zoo.DepthwiseConv,)   # layers with weights (and maybe a bias)
PASS_THROUGH = (zoo.Pool, zoo.Add, zoo.ReLU) + AFFINE   # real values in, real values out


def sources(model):
    """{layer name: tuple of the layer names it reads}."""
    srcs, prev = {}, zoo.INPUT
    for layer in model.layers:
        srcs[layer.name] = layer.srcs if isinstance(layer, zoo.Add) else (layer.src or prev,)
        prev = layer.name
    return srcs


def weight_flags(model, float_twin=False):
    """{weight layer: binary?}; the float twin has no binary layer."""
    flags = zoo.binary_flags(model)
    return {name: False for name in flags} if float_twin else flags


def relu_layers(model, flags):
    """Names of the layers whose output goes through a ReLU: every float
    weight layer but the model's last weight layer, or the BatchNorm that
    directly follows it (reads it and comes next in the list) -- unless that
    output reaches a binary weight layer through real-valued, element-wise
    steps (pooling, BatchNorm, Scale, Dropout, Add): a sign follows there,
    and a ReLU before a sign would make every bit +1. A float twin has no
    binary layer, so it keeps every ReLU. A model with implicit_relus=False
    has only its ReLU layers (none here)."""
    if not model.implicit_relus:
        return set()
    weights = [l for l in model.layers if isinstance(l, zoo.WEIGHT_LAYERS)]
    last = weights[-1].name if weights else None
    srcs = sources(model)
    out = set()
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, zoo.WEIGHT_LAYERS) or flags[layer.name] or layer.name == last:
            continue
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        at = nxt.name if isinstance(nxt, zoo.BatchNorm) and srcs[nxt.name] == (layer.name,) \
            else layer.name
        if not _reaches_a_sign(model, srcs, flags, at):
            out.add(at)
    return out


def _reaches_a_sign(model, srcs, flags, name):
    """Does `name`'s output reach a binary weight layer's input through
    pass-through layers only (no float weight layer in between)?"""
    readers = {}
    for layer in model.layers:
        for s in srcs[layer.name]:
            readers.setdefault(s, []).append(layer)
    todo, seen = [name], set()
    while todo:
        for reader in readers.get(todo.pop(), ()):
            if isinstance(reader, zoo.WEIGHT_LAYERS):
                if flags[reader.name]:
                    return True
            elif isinstance(reader, PASS_THROUGH) and reader.name not in seen:
                seen.add(reader.name)
                todo.append(reader.name)
    return False


def tensor_dict(tensors):
    return {t.name: t.values for t in tensors}


def conv_weight_ohwi(w_oihw):
    return np.ascontiguousarray(np.asarray(w_oihw).transpose(0, 2, 3, 1))


def affine_params(layer, params, dtype=np.float64):
    """(multiplier, offset) per channel of a BatchNorm / Scale / Dropout,
    or None for the identity."""
    if isinstance(layer, zoo.BatchNorm):
        return (params[f"{layer.name}.scale"].astype(dtype),
                params[f"{layer.name}.bias"].astype(dtype))
    if isinstance(layer, zoo.Scale):
        scale = (params[f"{layer.name}.scale"].astype(dtype) if layer.learnable
                 else np.asarray(1 / 256, dtype))
        return scale, None
    return None


def apply_affine(x, mult_add):
    """y = x * scale (+ bias), in the steps every engine takes."""
    if mult_add is None:
        return x
    scale, bias = mult_add
    y = x * scale
    return y if bias is None else y + bias


def pool(x, kind, kernel, stride, padding):
    """Max (pads -inf) or average (counts only real pixels) pooling, NHWC."""
    b, h, w, c = x.shape
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (w + 2 * padding - kernel) // stride + 1
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    if kind == "max":
        win = np.lib.stride_tricks.sliding_window_view(
            np.pad(x, pad, constant_values=-np.inf), (kernel, kernel), axis=(1, 2))
        return win[:, ::stride, ::stride][:, :ho, :wo].max(axis=(4, 5))
    sums = np.lib.stride_tricks.sliding_window_view(
        np.pad(x, pad), (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride][:, :ho, :wo]
    ones = np.lib.stride_tricks.sliding_window_view(
        np.pad(np.ones((1, h, w, 1)), pad), (kernel, kernel), axis=(1, 2))
    counts = ones[:, ::stride, ::stride][:, :ho, :wo].sum(axis=(4, 5))
    return sums.sum(axis=(4, 5)) / counts


# A float32 engine may give the opposite sign to a value this close to 0
# (relative to the largest magnitude of that activation), and nothing else.
FLIP_RTOL = 1e-4


def numpy_forward(model, tensors, x, float_twin=False, trace=None, signs=None, flips=None):
    """Logits [B, classes] float64 of `model` on x (float32 NHWC).

    tensors: weights.model_tensors(model, seed) (or a {name: array} dict).
    trace: a dict to receive every layer's output (binary weight layers:
    their exact integer sign(x) (*) sign(W), before the bias).

    signs: {binary layer: +1/-1 NHWC} the input signs another engine used.
    A float32 engine can put a value within rounding of 0 on the other side;
    in a random network one such bit changes the logits entirely, so the
    reference follows the engine's sign wherever it differs at a value with
    |v| <= FLIP_RTOL * max|v| (and counts it in flips[layer][0]); a sign
    that differs anywhere else counts in flips[layer][1] (a real error)."""
    params = tensors if isinstance(tensors, dict) else tensor_dict(tensors)
    flags = weight_flags(model, float_twin)
    relus = relu_layers(model, flags)
    srcs = sources(model)
    acts = {zoo.INPUT: np.asarray(x, np.float64)}
    for layer in model.layers:
        name = layer.name
        a = acts[srcs[name][0]]
        bias = params.get(f"{name}.bias") if isinstance(layer, FILTERS) else None
        if isinstance(layer, (zoo.Conv, zoo.Dense)):
            if isinstance(layer, zoo.Conv):
                w = conv_weight_ohwi(params[f"{name}.weight"])
                stride, padding = layer.stride, layer.padding
            else:   # a dense layer is a valid conv whose kernel covers its input
                w = params[f"{name}.weight"].reshape((-1,) + a.shape[1:])
                stride, padding = 1, 0
            if flags[name] and signs is not None and name in signs:
                a = _follow_signs(a, signs[name], name, flips)
            y = numpy_conv(a, w, stride, padding, binary=flags[name])
            if flags[name] and trace is not None:
                trace[name] = y.copy()
            y = y.astype(np.float64)
            if bias is not None:
                y = y + bias.astype(np.float64)
        elif isinstance(layer, zoo.DepthwiseConv):
            w = params[f"{name}.weight"]                      # (C, 1, k, k)
            y = numpy_depthwise(a, w[:, 0].transpose(1, 2, 0), layer.stride, layer.padding)
            if bias is not None:
                y = y + bias.astype(np.float64)
        elif isinstance(layer, zoo.ReLU):
            y = np.maximum(a, 0)
        elif isinstance(layer, AFFINE):
            y = apply_affine(a, affine_params(layer, params))
        elif isinstance(layer, zoo.Pool):
            y = pool(a, layer.kind, layer.kernel, layer.stride, layer.padding)
        elif isinstance(layer, zoo.Add):
            y = a + acts[srcs[name][1]]
        else:
            raise TypeError(f"unknown layer type {type(layer).__name__}")
        if name in relus:
            y = np.maximum(y, 0)
        acts[name] = y
        if trace is not None and name not in trace:
            trace[name] = y
    out = acts[model.layers[-1].name]
    return out.reshape(out.shape[0], -1)


def _follow_signs(a, theirs, name, flips):
    """a with its sign replaced by `theirs` (+1/-1) where they differ within
    FLIP_RTOL of 0; the counts of near and far differences in flips."""
    theirs = np.asarray(theirs).reshape(a.shape) > 0
    differ = (a >= 0) != theirs
    near = np.abs(a) <= FLIP_RTOL * np.abs(a).max(initial=0)
    if flips is not None:
        flips[name] = (int((differ & near).sum()), int((differ & ~near).sum()))
    if not differ.any():
        return a
    return np.where(differ & near, np.where(theirs, 1.0, -1.0), a)
