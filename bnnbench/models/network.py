"""bnnbench's own whole-network runtime: a walk over a zoo model spec.

prepare() walks the layers once, untimed: weights packed, thresholds folded,
every buffer allocated. It returns run(), which calls one step per layer,
each reading and writing those preallocated buffers. It is not a framework:
the peers (LCE, TF Lite) are the frameworks it is measured against.

What a model computes (every engine follows this exactly; the plain numpy
reference is bnnbench.models.numpy_net.numpy_forward):

- Parameters are weights.model_tensors(model, seed): conv weights OIHW,
  dense weights (out, in_features), BatchNorm folded to y = scale * x + bias
  per channel, Scale a per-channel multiplier (the constant 1/256 when not
  learnable). Activations are NHWC; the input is float32 [B, H, W, C] with
  (C, H, W) = model.input_shape.
- sign(v) = +1 if v >= 0 else -1, so sign(0) = +1.
- Float conv: zero padding; "same" is TF's (out = ceil(in / stride), the
  odd pixel of padding at the bottom/right); an int p pads p on every side.
  y = conv(x, W) + b.
- Binary conv: y = conv(sign(x), sign(W)), padding pixels read as +1 (LCE's
  one-padding), an exact integer; then + b when the layer has a bias.
- Dense flattens NHWC (h, w, c): float x @ W.T + b, binary
  sign(x) @ sign(W).T + b. Here it is a conv whose kernel covers its input.
- ReLU only after a FLOAT weight layer that is not the model's last weight
  layer, and after the BatchNorm instead when one directly follows it; and
  not where that output reaches a binary layer through pooling, BatchNorm,
  Scale, Dropout or Add, since the binary layer's sign would turn every
  ReLU output into +1 (numpy_net.relu_layers, the one rule every engine
  uses). A model with implicit_relus=False has no such rule: a ReLU runs
  exactly where the spec lists a ReLU layer (QuickNet).
- Depthwise conv: one k x k float filter per channel, zero padding as a
  float conv, + b when it has a bias.
- Pool: max pads -inf, avg divides by the real pixels in the window. Add
  sums, Dropout is the identity. The logits are the last layer's output,
  flattened to [B, classes].
- The float twin ("net_float") is the same spec with every weight layer
  float (so the ReLU rule then covers all of them but the last).

How the runtime does it:

- Binary convs and binary dense layers run the layer kernels
  (_bconv.bconv_layer on a float input: sign + pack + xnor; _bconv.bconv on
  an input that is already packed). They write exact int32 y.
- Threshold folding: when a binary layer's output goes only through
  per-channel affine layers (its bias, BatchNorm, Scale, Dropout; each read
  by the next alone) to layers that are all binary, nothing in between is
  materialized: the next input's bits are sign(affine(y)) >= 0, which per
  channel is `(y >= t) xor flip` with an integer t (flip for a decreasing
  affine: negative scale). t is found by evaluating the affine chain in
  float64, step by step as the reference does, at every integer y in
  [-K, K], so the fold decides every bit exactly as the reference does,
  including a scale of 0 (a constant bit: t = -K or K + 1) and ties (0 gives
  +1). The bits are packed straight into the next layer's input buffer
  (_netops.threshold_pack).
- Max pool on integers: when a binary layer (its bias at most) feeds a max
  pool alone and the pool's output reaches binary layers through affine
  layers only, the pool runs on the exact int32 y (a max commutes with the
  increasing bias add, exactly, in float64 as the reference adds it), and
  its output is folded into thresholds and packed as above (cntk-bnn:
  bconv2 -> pool2 -> bn3 -> bconv3). Windows must hold a real pixel
  (padding < kernel).
- Epilogues: a binary layer whose output stays float is written once by
  _netops.epilogue, float32 scale * y + bias (its bias and the following
  affine layers, each read by the next alone, composed in float64, rounded
  once to float32), plus the other input of an Add it alone feeds, then
  ReLU. Its step is named after the last layer it covers and placed where
  that layer is in the walk (an Add's other input is ready there); a binary
  layer with only its own bias does it inside its own step.
- ReLU layers: one that alone reads a binary layer without bias clamps
  that layer's integers at the start of its epilogue (relu_in: max(y, 0),
  exact), so the block's ReLU, BatchNorm and shortcut Add are one pass;
  one that alone reads a layer whose step ends in a ReLU (a float weight
  or depthwise layer, a BatchNorm, Scale or Add, a binary layer's own
  epilogue) switches that ReLU on and names its output; any other is an
  elementwise step of its own.
- Depthwise convs: _netops.depthwise, a BatchNorm that alone reads one
  folded into its weights and bias as for a float conv.
- Float convs: im2col (_bconv.float_im2col) into a preallocated buffer, then
  numpy matmul (the BLAS, pinned to `threads` inside run()), then bias and
  ReLU in one pass (_netops.bias_relu); float dense: the BLAS. A BatchNorm
  that alone reads a float conv or dense layer is folded into its weights
  and bias at prepare() (W * scale, b * scale + bias, in float64), the ReLU
  after it kept; a Scale that a float weight layer alone reads folds into
  its weights per input channel (zero padding stays zero). Pooling, lone
  BatchNorms, Scales and Adds: _netops (pool, epilogue) into preallocated
  buffers, prange over rows when threads > 1. Float activations are
  float32.

check(model, out, ref) bound: the binary layers are exact, so what is left
is float32 rounding in the float layers against the float64 reference:
|out - ref| <= ATOL + RTOL * max|ref| over each image's logits, with RTOL =
1e-3 and ATOL = 1e-4, and the same argmax wherever the top two reference
logits are further apart than that bound. (A float32 GEMM of depth K with
O(1) terms errs by about sqrt(K) * 6e-8 relative; a dozen such layers stay
far below 1e-3.) A float value that lands within rounding of 0 just before
a sign can still flip one bit in float32, and in a random network one bit
changes the logits entirely: verify() has the reference follow the
runtime's sign there (numpy_net.FLIP_RTOL) and counts those flips; every
other bit must match, and each binary layer's integers exactly.
"""
import numpy as np

from .. import _bconv, _netops
from ..errors import BnnbenchError
from ..limits import check_memory, check_threads
from ..methods.conv import weight_panels
from ..methods.kernels import cache_aligned_zeros, pack_signs
from ..methods.layer_shapes import layer_geometry
from . import zoo
from .numpy_net import (AFFINE, FILTERS, affine_params, conv_weight_ohwi, numpy_forward,
                        relu_layers, sources, tensor_dict, weight_flags)

ENGINES = ("net_bnnbench", "net_float")   # the binary network and its float twin
WORD_BITS = 64
RTOL, ATOL = 1e-3, 1e-4


def check(model, out, ref):
    """(ok, max_abs_error) of logits `out` against the reference `ref`
    (numpy_forward), within the bound stated in the module docstring."""
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        return False, float("inf")
    err = np.abs(out - ref)
    bound = ATOL + RTOL * np.abs(ref).max(axis=1, keepdims=True)
    ok = bool((err <= bound).all())
    top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else None
    if top2 is not None:
        clear = (top2[:, 1] - top2[:, 0]) > 2 * bound[:, 0]
        ok = ok and bool((out.argmax(1) == ref.argmax(1))[clear].all())
    return ok, float(err.max()) if err.size else 0.0


def verify(model, tensors, x, run):
    """(ok, max_abs_error, near_zero_flips) of a prepared run() against the
    reference on the same input. The runtime's binary layers must equal the
    reference's integers exactly and its logits be within check()'s bound;
    the reference follows the runtime's sign at a value within rounding of
    0 (numpy_net.FLIP_RTOL), counted in near_zero_flips, and a sign that
    differs anywhere else fails."""
    out = np.array(run(), np.float64)
    float_twin = run.engine == "net_float"
    inspected = run.inspect()
    trace, flips = {}, {}
    ref = numpy_forward(model, tensors, x, float_twin=float_twin, trace=trace,
                        signs={n: s for n, (s, _) in inspected.items()}, flips=flips)
    ok, err = check(model, out, ref)
    ok = ok and all(far == 0 for _, far in flips.values())
    ok = ok and all(np.array_equal(y, trace[n]) for n, (_, y) in inspected.items())
    return ok, err, sum(near for near, _ in flips.values())


def _check_args(model, x, engine, threads):
    if engine not in ENGINES:
        raise BnnbenchError(f"unknown network engine {engine!r}; known: {', '.join(ENGINES)}")
    threads = check_threads(threads)
    c, h, w = model.input_shape
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        what = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise BnnbenchError(f"x must be a float32 numpy array, got {what}")
    if x.ndim != 4 or x.shape[1:] != (h, w, c) or x.shape[0] < 1:
        raise BnnbenchError(f"x must be NHWC [B, {h}, {w}, {c}] for {model.name}, "
                            f"got shape {x.shape}")
    return threads


def _nhwc(batch, shape):
    """A resolved (C, H, W) or (F,) shape as the NHWC buffer shape."""
    if len(shape) == 1:
        return (batch, 1, 1, shape[0])
    c, h, w = shape
    return (batch, h, w, c)


def _planned_bytes(model, batch, flags):
    """What prepare() will allocate, roughly (upper side), before it does."""
    total = 0
    for info in zoo.resolve(model):
        n = batch * int(np.prod(info.out_shape))
        total += 3 * 4 * n   # float out, int32 out, packed / pool padding
        if info.gemm and not flags.get(info.name):
            m, k, pix = info.gemm
            total += 4 * batch * pix * k      # im2col
        total += 4 * info.params
    return total


def _threshold(chain, k, channels):
    """(t int32 [C], flip bool [C]) with sign(chain(y)) >= 0 <=> (y >= t) xor
    flip for every integer y in [-k, k]; chain: [(mult, offset)] in float64."""
    y = np.arange(-k, k + 1, dtype=np.float64)[:, None]
    v = y
    for mult, offset in chain:
        if mult is not None:
            v = v * mult
        if offset is not None:
            v = v + offset
    d = np.broadcast_to(v >= 0, (y.shape[0], channels))
    up = (d[1:] >= d[:-1]).all(axis=0)
    down = (d[1:] <= d[:-1]).all(axis=0)
    if not (up | down).all():
        raise BnnbenchError("threshold fold: an affine chain is not monotone")  # cannot happen
    flip = ~up
    target = np.where(flip[None, :], ~d, d)          # non-decreasing in y
    first = np.where(target.any(axis=0), target.argmax(axis=0), 2 * k + 1)
    return (first - k).astype(np.int32), flip


def prepare(model, tensors, x, engine="net_bnnbench", threads=1):
    """Untimed set-up (weights packed, thresholds folded, buffers allocated)
    for input x (float32 NHWC [B, H, W, C]); returns run() -> logits float32
    [B, classes] (a buffer reused between calls).

    run.held_bytes: bytes the runtime holds (weights as stored, float
    params, activation buffers, workspaces). run.deployed_bytes: the model as
    this runtime stores it (binary weights packed into 64-bit words per
    output channel, every float parameter at 4 bytes). run.steps: [(layer,
    "binary" | "float" | "other", fn)], each fn running that layer alone on
    the buffers the last run() left (not BLAS-pinned: time them inside
    methods.kernels.blas_threads(threads)). run.inspect(): {binary layer: (input
    signs int8 NHWC, int32 sign(x) (*) sign(W))} from the last run().
    """
    threads = _check_args(model, x, engine, threads)
    batch = x.shape[0]
    flags = weight_flags(model, float_twin=(engine == "net_float"))
    check_memory(_planned_bytes(model, batch, flags), f"{engine} on {model.name}",
                 "use a smaller batch")
    params = tensors if isinstance(tensors, dict) else tensor_dict(tensors)
    relus = relu_layers(model, flags)
    srcs = sources(model)
    layers = {l.name: l for l in model.layers}
    infos = {i.name: i for i in zoo.resolve(model)}
    shapes = {zoo.INPUT: x.shape}
    shapes.update({n: _nhwc(batch, i.out_shape) for n, i in infos.items()})
    consumers = {n: [] for n in shapes}
    for name, ss in srcs.items():
        for s in ss:
            consumers[s].append(name)
    last = model.layers[-1].name
    is_binary = lambda n: flags.get(n, False)   # noqa: E731
    filters = [l.name for l in model.layers if isinstance(l, FILTERS)]

    # ReLU layers (models with implicit_relus=False). One right after a
    # binary layer without bias clamps its integers inside that layer's
    # epilogue (relu_in); one that alone reads a layer whose step can end in
    # a ReLU joins that step, and its name then refers to that output;
    # any other is a step of its own.
    relu_in, relu_alias = {}, set()
    for layer in model.layers:
        if not isinstance(layer, zoo.ReLU):
            continue
        src = srcs[layer.name][0]
        if consumers[src] != [layer.name]:
            continue
        if is_binary(src) and f"{src}.bias" not in params:
            relu_in[src] = layer.name
        elif is_binary(src) or isinstance(layers.get(src), FILTERS + (zoo.Add, zoo.BatchNorm,
                                                                      zoo.Scale)):
            relus.add(src)
            relu_alias.add(layer.name)

    # Threshold folds: binary layer -> its fold end (bits packed for binary readers).
    fold_end, folded = {}, set()      # folded: layers never materialized as floats
    for name in shapes:
        if not is_binary(name):
            continue
        chain, cur = [name], name
        while cur != last:
            cons = consumers[cur]
            if cons and all(is_binary(c) for c in cons):
                fold_end[name] = cur
                folded.update(chain)
                break
            if (len(cons) == 1 and isinstance(layers[cons[0]], AFFINE)
                    and cons[0] not in relus):
                cur = cons[0]
                chain.append(cur)
                continue
            break

    # A BatchNorm that alone reads a float weight layer folds into its
    # weights and bias (float: within the bound); its ReLU stays after it.
    bn_fold = {}
    for name in filters:
        cons = consumers[name]
        if (not is_binary(name) and len(cons) == 1
                and isinstance(layers[cons[0]], zoo.BatchNorm)
                and srcs[cons[0]] == (name,) and name not in relus):
            bn_fold[name] = cons[0]

    # Max pool on a binary layer's integers, then a threshold fold: when a
    # binary layer (its bias at most in between) feeds a max pool alone whose
    # output reaches binary layers through affine layers only. A max commutes
    # with the (increasing) bias add, exactly in float64 as the reference
    # computes it, so the fold still decides every bit as the reference does.
    int_pool = {}
    for name in flags:
        cons = consumers[name]
        if not is_binary(name) or name in fold_end or len(cons) != 1:
            continue
        pool = layers[cons[0]]
        if not (isinstance(pool, zoo.Pool) and pool.kind == "max"
                and pool.padding < pool.kernel):   # every window holds a real pixel
            continue
        chain, cur = [pool.name], pool.name
        while cur != last:
            nxt = consumers[cur]
            if nxt and all(is_binary(c) for c in nxt):
                int_pool[name] = (pool.name, cur, chain[1:])
                folded.update(chain)
                break
            if len(nxt) == 1 and isinstance(layers[nxt[0]], AFFINE) and nxt[0] not in relus:
                cur = nxt[0]
                chain.append(cur)
                continue
            break

    # Epilogues: a binary layer whose output stays float is written once, as
    # float32 scale * y + bias (its bias and the affine layers each read by
    # the next alone, composed), + the other input of an Add it alone feeds,
    # then ReLU: one step, named after the last layer it covers.
    epilogue, absorbed = {}, {}       # binary layer -> (end, affine chain, add)
    for name in flags:
        if not is_binary(name) or name in fold_end or name in int_pool:
            continue
        chain, cur = [], name
        if name in relu_in:
            cur = relu_in[name]
            chain.append(cur)
        while (len(consumers[cur]) == 1 and isinstance(layers[consumers[cur][0]], AFFINE)
               and cur not in relus):
            cur = consumers[cur][0]
            chain.append(cur)
        add = None
        cons = consumers[cur]
        if (cur not in relus and len(cons) == 1 and isinstance(layers[cons[0]], zoo.Add)
                and cons[0] not in absorbed and len(set(srcs[cons[0]])) == 2):
            add = cons[0]
            absorbed[add] = name
        epilogue[name] = (cur, chain, add)
    # A Scale read by a float weight layer alone folds into its input channels
    # (unless it is already part of a binary layer's epilogue).
    in_epilogues = {n for _, chain, _ in epilogue.values() for n in chain}
    scale_fold = {}
    for name in flags:
        s = srcs[name][0]
        if (not is_binary(name) and isinstance(layers.get(s), zoo.Scale)
                and consumers[s] == [name] and s not in in_epilogues):
            scale_fold[name] = s
    covered = {n for end, chain, add in epilogue.values()
               for n in chain + ([add] if add else []) if n != (add or end)}
    covered |= set(bn_fold.values()) | set(scale_fold.values())
    pending = {}                      # last layer of an epilogue -> its step maker

    held = {}

    def keep(arr):
        held[id(arr)] = arr
        return arr

    floats = {zoo.INPUT: x if x.flags.c_contiguous else np.ascontiguousarray(x)}
    packed = {}                             # node -> packed bits (fold ends)
    ints = {}                               # binary layer -> int32 output
    steps, inspectors = [], {}

    def packed_input(node):
        """The packed form of a fold end (allocated once)."""
        if node not in packed:
            b, h, w, c = shapes[node]
            packed[node] = keep(cache_aligned_zeros((b, h, w, -(-c // WORD_BITS)), np.uint64))
        return packed[node]

    for layer in model.layers:
        name = layer.name
        src = srcs[name][0]
        out_shape = shapes[name]
        if name in covered:
            continue
        if name in pending:
            steps.append((name, "other", pending.pop(name)()))
            continue
        if isinstance(layer, zoo.WEIGHT_LAYERS):
            if name in scale_fold:
                src = srcs[scale_fold[name]][0]
            wt = params[f"{name}.weight"]
            in_shape = shapes[src]
            if isinstance(layer, zoo.Conv):
                w = conv_weight_ohwi(wt)
                stride, padding = layer.stride, layer.padding
            else:
                w = np.ascontiguousarray(wt.reshape((-1,) + tuple(in_shape[1:])))
                stride, padding = 1, 0
            ho, wo, top, left = layer_geometry(in_shape, w.shape, stride, padding)
            bias = params.get(f"{name}.bias")
            f, kh, kw, c = w.shape
            if is_binary(name):
                end, chain, add = epilogue.get(name, (None, None, None))
                own = end == name and add is None     # only its bias: part of the layer
                steps.append((name, "binary", _binary_step(
                    name, src, w, bias, stride, top, left, shapes, floats, packed, ints,
                    own, name in relus, threads, keep, inspectors)))
                if end is not None and not own:
                    pending[add or end] = _epilogue_maker(
                        name, bias, chain, add, srcs, layers, params, relus, shapes, floats,
                        ints, threads, keep, name in relu_in)
            else:
                relu = name in relus
                if name in scale_fold:
                    mult, _ = affine_params(layers[scale_fold[name]], params)
                    w = w.astype(np.float64) * mult          # OHWI: the last axis is C
                if name in bn_fold:
                    bn = bn_fold[name]
                    scale, offset = affine_params(layers[bn], params)
                    w = w.astype(np.float64) * scale[:, None, None, None]
                    bias = offset + (0 if bias is None else bias.astype(np.float64) * scale)
                    relu = bn in relus
                steps.append((name, "float", _float_step(
                    name, floats[src], w.astype(np.float32), bias, stride,
                    (ho, wo, top, left), out_shape, relu, threads, keep, floats)))
                if name in bn_fold:
                    floats[bn_fold[name]] = floats[name]
            if is_binary(name) and name in fold_end:
                end = fold_end[name]
                chain = []
                if bias is not None:
                    chain.append((None, bias.astype(np.float64)))
                node = name
                while node != end:
                    node = consumers[node][0]
                    mult_add = affine_params(layers[node], params)
                    if mult_add is not None:
                        chain.append(mult_add)
                t, flip = _threshold(chain, kh * kw * c, f)
                steps.append((end, "other", _threshold_step(
                    ints[name], t, flip, packed_input(end), threads, keep)))
            if name in int_pool:
                pool, end, after = int_pool[name]
                chain = [] if bias is None else [(None, bias.astype(np.float64))]
                chain += [m for m in (affine_params(layers[n], params) for n in after) if m]
                t, flip = _threshold(chain, kh * kw * c, f)
                pooled = keep(cache_aligned_zeros(shapes[pool], np.int32))
                steps.append((pool, "other", _int_pool_step(
                    ints[name], layers[pool], pooled, t, flip, packed_input(end), threads,
                    keep)))
            continue
        if isinstance(layer, zoo.DepthwiseConv):
            w = params[f"{name}.weight"][:, 0].transpose(1, 2, 0).astype(np.float64)  # k, k, C
            bias = params.get(f"{name}.bias")
            relu = name in relus
            if name in bn_fold:
                scale, offset = affine_params(layers[bn_fold[name]], params)
                w = w * scale
                bias = offset + (0 if bias is None else bias.astype(np.float64) * scale)
                relu = bn_fold[name] in relus
            o = floats[name] = keep(cache_aligned_zeros(out_shape, np.float32))
            steps.append((name, "float", _depthwise_step(
                floats[src], layer, w, bias, o, relu, threads, keep)))
            if name in bn_fold:
                floats[bn_fold[name]] = o
            continue
        if name in folded:
            continue
        a = floats[src]
        if isinstance(layer, zoo.Dropout) or name in relu_alias:
            floats[name] = a
            continue
        o = floats[name] = keep(cache_aligned_zeros(out_shape, np.float32))
        relu = name in relus
        if isinstance(layer, AFFINE) or isinstance(layer, zoo.ReLU):
            mult_add = affine_params(layer, params, np.float32)
            relu = relu or isinstance(layer, zoo.ReLU)
            steps.append((name, "other", _affine_step(a, mult_add, o, relu, threads, keep)))
        elif isinstance(layer, zoo.Add):
            steps.append((name, "other", _add_step(a, floats[srcs[name][1]], o, relu,
                                                   threads, keep)))
        elif isinstance(layer, zoo.Pool):
            steps.append((name, "other", _pool_step(a, layer, o, threads)))
        else:
            raise BnnbenchError(f"{model.name}.{name}: unknown layer type {type(layer).__name__}")

    if pending:   # cannot happen: every epilogue ends on a layer of the walk
        raise BnnbenchError(f"{model.name}: epilogues never placed: {', '.join(pending)}")
    final = floats[last].reshape(batch, -1)
    fns = [fn for _, _, fn in steps]

    blas = _blas_libraries()

    def run():
        before = [lib.num_threads for lib in blas]
        for lib in blas:
            lib.set_num_threads(threads)
        try:
            for fn in fns:
                fn()
        finally:
            for lib, n in zip(blas, before):
                lib.set_num_threads(n)
        return final

    def inspect():
        return {n: fn() for n, fn in inspectors.items()}

    run.steps = steps
    run.inspect = inspect
    run.held_bytes = int(sum(a.nbytes for a in held.values()))
    run.deployed_bytes = _deployed_bytes(model, flags)
    run.engine, run.threads = engine, threads
    return run


def _blas_libraries():
    """threadpoolctl's controllers of the loaded BLAS libraries.

    run() pins them itself rather than entering methods.kernels.blas_threads:
    that context manager rescans the loaded libraries on every entry (about
    0.5 ms here, as long as a whole CIFAR-10 network), while setting the
    thread count of controllers found once at prepare() costs microseconds.
    """
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController().select(user_api="blas").lib_controllers


def _deployed_bytes(model, flags):
    total = 0
    for info in zoo.resolve(model):
        if flags.get(info.name):
            total += info.packed_weight_bytes + 4 * (info.biases + info.other_params)
        else:
            total += info.float_bytes
    return total


def _rows(a):
    """a (..., C) as (pixels, C) without a copy (a view of the same buffer)."""
    v = a.view()
    v.shape = (-1, a.shape[-1])
    return v


def _float_step(name, a, w, bias, stride, geom, out_shape, relu, threads, keep, floats):
    b = a.shape[0]
    f, kh, kw, c = w.shape
    ho, wo, top, left = geom
    n, k = b * ho * wo, kh * kw * c
    wmat = keep(np.ascontiguousarray(w.reshape(f, k).T))
    out = floats[name] = keep(cache_aligned_zeros(out_shape, np.float32))
    out2d = out.reshape(n, f)
    bias32 = None if bias is None else keep(np.asarray(bias, np.float32))
    direct = (kh, kw, stride, top, left) == (a.shape[1], a.shape[2], 1, 0, 0) or \
        (kh == kw == stride == 1 and top == left == 0)
    if direct:   # a dense layer, or a 1x1 conv: the input already is the im2col matrix
        cols = a.reshape(n, k)
        im2col = None
    else:
        cols = keep(cache_aligned_zeros((n, k), np.float32))

        def im2col():
            _bconv.float_im2col(a, ho, wo, kh, kw, stride, top, left, cols, threads)

    def step():
        if im2col is not None:
            im2col()
        np.matmul(cols, wmat, out=out2d)
        _netops.bias_relu(out2d, bias32, relu, threads)
    return step


def _binary_step(name, src, w, bias, stride, top, left, shapes, floats, packed, ints,
                 own, relu, threads, keep, inspectors):
    """The layer's exact int32 y; with `own`, also its float output y + b
    (its bias only: anything more is an epilogue step of its own)."""
    f, kh, kw, c = w.shape
    b, h, wd, _ = shapes[src]
    cw = -(-c // WORD_BITS)
    weights = weight_panels(w, WORD_BITS)
    panels = keep(_bconv.tile_panels(weights))   # as the tiles read them, once
    pad_pixel = keep(pack_signs(np.ones(c, np.float32), WORD_BITS))
    work = keep(cache_aligned_zeros(_bconv.work_shape(weights.shape[1], threads), np.uint64))
    y = ints[name] = keep(cache_aligned_zeros(shapes[name], np.int32))
    k = kh * kw * c
    if src in packed:
        bits = packed[src]
        x = None
    else:
        x = floats[src]
        bits = keep(cache_aligned_zeros((b, h, wd, cw), np.uint64))
    if own:
        out = floats[name] = keep(cache_aligned_zeros(shapes[name], np.float32))
        y2d, out2d = _rows(y), _rows(out)
        ones = keep(np.ones(f, np.float32))
        bias32 = keep(np.zeros(f, np.float32) if bias is None else bias.astype(np.float32))

    def step():
        if x is None:
            _bconv.bconv(bits, pad_pixel, panels, kh, kw, stride, top, left, k, y, work,
                         threads)
        else:
            _bconv.bconv_layer(x, bits, pad_pixel, panels, kh, kw, stride, top, left, k, y,
                               work, threads)
        if own:
            _netops.epilogue(y2d, ones, bias32, out2d, None, relu, threads)

    def inspect():
        if x is None:
            u8 = bits.view(np.uint8)
            signs = np.unpackbits(u8, axis=-1, bitorder="little")[..., :c]
        else:
            signs = x >= 0
        return np.where(signs, 1, -1).astype(np.int8), y.copy()
    inspectors[name] = inspect
    return step


def _epilogue_maker(name, bias, chain, add, srcs, layers, params, relus, shapes, floats,
                    ints, threads, keep, relu_in=False):
    """A function that builds the epilogue step of binary layer `name` once
    the walk reaches its last layer (so an Add's other input exists):
    float32 scale * y + bias (+ the Add's other input) (then ReLU), with
    scale and bias the layer's bias and `chain`'s affine layers composed in
    float64; with relu_in, y is clamped at 0 first (its ReLU layer heads the
    chain)."""
    def make():
        c = shapes[name][-1]
        mult, offset = np.ones(c), np.zeros(c)
        if bias is not None:
            offset = offset + bias.astype(np.float64)
        for node in chain:
            mult_add = affine_params(layers[node], params)
            if mult_add is not None:
                m, o = mult_add
                mult, offset = mult * m, offset * m
                if o is not None:
                    offset = offset + o
        scale, shift = keep(mult.astype(np.float32)), keep(offset.astype(np.float32))
        end = chain[-1] if chain else name
        last = add or end
        out = floats[last] = keep(cache_aligned_zeros(shapes[last], np.float32))
        res = None
        if add is not None:
            other = [s for s in srcs[add] if s != end][0]
            res = _rows(floats[other])
        y2d, out2d, relu = _rows(ints[name]), _rows(out), last in relus

        def step():
            _netops.epilogue(y2d, scale, shift, out2d, res, relu, threads, relu_in)
        return step
    return make


def _threshold_step(y, t, flip, bits, threads, keep):
    """The next binary layer's input bits: (y >= t) xor flip per channel."""
    t = keep(np.ascontiguousarray(t, np.int32))
    flip = keep(np.ascontiguousarray(flip, np.uint8))
    y2d, bits2d = _rows(y), _rows(bits)

    def step():
        _netops.threshold_pack(y2d, t, flip, bits2d, threads)
    return step


def _int_pool_step(y, layer, pooled, t, flip, bits, threads, keep):
    """Max pool on a binary layer's int32 y, then its threshold fold."""
    k, s, p = layer.kernel, layer.stride, layer.padding
    threshold = _threshold_step(pooled, t, flip, bits, threads, keep)

    def step():
        _netops.pool(y, pooled, "max", k, s, p, threads)
        threshold()
    return step


def _affine_step(a, mult_add, o, relu, threads, keep):
    c = a.shape[-1]
    scale, bias = mult_add if mult_add is not None else (None, None)
    scale = keep(np.ascontiguousarray(np.broadcast_to(1 if scale is None else scale, (c,)),
                                      np.float32))
    bias = keep(np.zeros(c, np.float32) if bias is None else
                np.ascontiguousarray(bias, np.float32))
    a2d, o2d = _rows(a), _rows(o)

    def step():
        _netops.epilogue(a2d, scale, bias, o2d, None, relu, threads)
    return step


def _add_step(a, b, o, relu, threads, keep):
    a2d, b2d, o2d = _rows(a), _rows(b), _rows(o)
    ones = keep(np.ones(a.shape[-1], np.float32))
    zeros = keep(np.zeros(a.shape[-1], np.float32))

    def step():
        _netops.epilogue(a2d, ones, zeros, o2d, b2d, relu, threads)
    return step


def _depthwise_step(a, layer, w, bias, o, relu, threads, keep):
    """A depthwise conv (its BatchNorm folded into w and bias) + ReLU."""
    k = layer.kernel
    _, _, top, left = layer_geometry(a.shape, (1, k, k, a.shape[-1]), layer.stride,
                                     layer.padding)
    w32 = keep(np.ascontiguousarray(w, np.float32))
    bias32 = None if bias is None else keep(np.ascontiguousarray(bias, np.float32))

    def step():
        _netops.depthwise(a, w32, bias32, o, layer.stride, top, left, relu, threads)
    return step


def _pool_step(a, layer, o, threads):
    k, s, p = layer.kernel, layer.stride, layer.padding

    def step():
        _netops.pool(a, o, layer.kind, k, s, p, threads)
    return step
