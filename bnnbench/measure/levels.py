"""The levels of work bnnbench times, one registry entry each.

A level (GEMMs, whole conv layers, and next whole networks) is one Level
record: its methods in registry order, the float baseline speedups are taken
over, the binary methods whose speedup answers a run, the row columns that
name a shape, how to make a shape's operands (seeded), prepare a method on
them (untimed; returns the timed call), check its output against numpy, and
the memory a shape needs. The sweep, profile, the run-file frame, the report,
compare, the asv suites and the CLI all read this one vocabulary; a new
level is a new entry here, not a copy of the others.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import limits
from ..errors import BnnbenchError
from ..methods import conv, kernels, peers
from ..methods.registry import lookup
from ..methods.verify import GemmCheck, LayerCheck
from ..models import network, numpy_net, weights, zoo

# Columns that name a GEMM shape in a row; a layer adds its geometry.
GEMM_SHAPE_KEYS = ("channels", "filters", "kernel", "batch", "out_size", "M", "N", "K")
LAYER_GEOMETRY = ("height", "width", "stride", "padding")
LAYER_SHAPE_KEYS = GEMM_SHAPE_KEYS + LAYER_GEOMETRY
# The binary methods whose speedup over the baseline is a run's answer, in
# the order the headline picks the first one present.
_HEADLINE = ("xnor_64", "xnor_32", "xnor_64_omp", "xnor_32_omp")


@dataclass(frozen=True)
class Level:
    name: str
    title: str                     # how tables and the report name the level
    all_methods: tuple             # registry records, also those this install lacks
    methods: tuple                 # available method names, registry order
    lookup: Callable               # name -> record, or a one-line BnnbenchError
    baseline: str                  # the float method speedups are taken over
    headline: tuple                # binary methods that answer a run, in order
    profile_defaults: tuple        # binary candidates `bnnbench profile` times
    shape_keys: tuple              # row columns naming a shape of this level
    blas_methods: frozenset        # methods whose timed call runs the BLAS
    make_operands: Callable        # (shape, seed) -> operands
    prepare: Callable              # (name, operands, threads) -> timed call
    check: Callable                # (operands, seed) -> object with check(name, out)
    shape_bytes: Callable          # shape -> peak bytes of one shape's steps
    shrink_hint: str               # what to ask for when a shape does not fit in memory
    row_fields: Callable = lambda shape, name: {}
    roofline: bool = True          # rows have a share of a probed peak (not whole networks)

    @property
    def by_name(self):
        return {m.name: m for m in self.all_methods}

    @property
    def libraries(self):
        """Methods whose threads are a library's (the BLAS, peer engines)."""
        return frozenset(m.name for m in self.all_methods
                         if m.name in self.blas_methods or getattr(m, "engine", None))

    def binary_methods(self, names):
        """`names` checked as this level's binary candidates (one-line errors)."""
        if not names:
            raise BnnbenchError("no binary methods to profile")
        for name in names:
            if self.lookup(name).kind != "xnor":
                raise BnnbenchError(f"{name!r} is not a binary method; {self.baseline} is "
                                    f"always the float baseline, the others must be xnor methods")
        return list(dict.fromkeys(names))


# ------------------------------------------------------------------ GEMM

def gemm_operands(shape, seed):
    rng = np.random.default_rng(limits.check_seed(seed))
    a = rng.standard_normal((shape.M, shape.K), dtype=np.float32)
    b = rng.standard_normal((shape.K, shape.N), dtype=np.float32)
    return a, b


def gemm_bytes(shape):
    """Peak bytes a sweep step holds for one shape: operands, output,
    references and packed copies (float32 everywhere, int32 outputs)."""
    m, n, k = shape.M, shape.N, shape.K
    return 4 * (m * k + k * n) + 4 * 3 * m * n + 4 * m * k + k * n // 8 + 8 * m * 256


GEMM = Level(
    name="gemm", title="GEMM", all_methods=kernels.ALL_METHODS, methods=kernels.METHODS,
    lookup=kernels.method, baseline="float_blas", headline=_HEADLINE,
    profile_defaults=("xnor_64", "xnor_64_omp", "binarize_xnor_64_omp"),
    shape_keys=GEMM_SHAPE_KEYS, blas_methods=frozenset({"float_blas"}),
    make_operands=gemm_operands,
    prepare=lambda name, operands, threads: kernels.prepare(name, *operands, threads),
    check=lambda operands, seed: GemmCheck(*operands, seed=seed), shape_bytes=gemm_bytes,
    shrink_hint="use fewer --channels or --filters, or a smaller --kernel, --batch or --out-size")


# ------------------------------------------------------------------ whole layers

def layer_operands(shape, seed):
    rng = np.random.default_rng(limits.check_seed(seed))
    x = rng.standard_normal((shape.batch, shape.height, shape.width, shape.channels),
                            dtype=np.float32)
    w = rng.standard_normal((shape.filters, shape.kernel, shape.kernel, shape.channels),
                            dtype=np.float32)
    return x, w, shape.stride, shape.padding


def layer_bytes(shape):
    """Peak bytes of one layer's steps: feature map and weights, the float
    im2col buffer, outputs and the reference (int64 windows of the binary
    reference are taken as views)."""
    n, k, f = shape.N, shape.K, shape.filters
    return 2 * shape.feature_map_bytes + 4 * f * k * 2 + 4 * n * k + 8 * n * f * 4


def layer_row_fields(shape, name):
    """Binary layers read the float feature map once per call: their roofline
    is min(popcount peak, read bandwidth x bit-ops per byte of it)."""
    fields = {"feature_map_bytes": shape.feature_map_bytes}
    if conv.BY_NAME[name].kind == "xnor":
        fields["read_bytes"] = shape.feature_map_bytes
    return fields


CONV = Level(
    name="conv", title="whole layers", all_methods=conv.ALL_CONV_METHODS,
    methods=conv.CONV_METHODS, lookup=conv.method, baseline="conv_float_blas",
    headline=tuple("conv_" + m for m in _HEADLINE),
    profile_defaults=("conv_xnor_64", "conv_xnor_64_omp"), shape_keys=LAYER_SHAPE_KEYS,
    blas_methods=frozenset({"conv_float_blas"}), make_operands=layer_operands,
    prepare=lambda name, ops, threads: conv.prepare(name, *ops, threads=threads),
    check=lambda ops, seed: LayerCheck(*ops, seed=seed), shape_bytes=layer_bytes,
    shrink_hint="use fewer --channels or --filters, or a smaller --kernel, --batch or --out-size",
    row_fields=layer_row_fields)


# ------------------------------------------------------------------ whole networks

@dataclass(frozen=True)
class NetMethod:
    name: str
    kind: str                 # "xnor": a binary network; "float": its float twin
    parallel: bool
    engine: Optional[str]     # None: bnnbench's runtime; else a peer engine
    description: str


NET_METHODS = (
    NetMethod("net_float", "float", True, None,
              "the float twin on bnnbench's runtime: im2col + the platform BLAS"),
    NetMethod("net_bnnbench", "xnor", True, None,
              "bnnbench's runtime: binary layers on the xnor kernels, packed bits between them"),
    NetMethod("net_lce", "xnor", True, "net_lce",
              "the Larq model converted by Larq Compute Engine, in its interpreter"),
    NetMethod("net_tflite_float", "float", True, "net_tflite_float",
              "the float twin converted to TF Lite, XNNPACK"),
)


def _net_unavailable():
    return {m.name: reason for m in NET_METHODS if m.engine
            for reason in [peers.missing(m.engine)] if reason}


def net_method(name):
    """The NetMethod called `name`, or a one-line BnnbenchError saying why not."""
    return lookup(name, {m.name: m for m in NET_METHODS}, _net_unavailable(), "network engine")


@dataclass(frozen=True, order=True)
class NetShape:
    """One model at one batch size: the model level's shape."""
    model: str
    batch: int

    @property
    def spec(self):
        return zoo.get_model(self.model)

    @property
    def ops(self):
        """2 ops per MAC, float and binary alike (as the other levels count)."""
        s = zoo.summarize(self.spec)
        return 2 * (s["float_macs"] + s["binary_macs"]) * self.batch

    def fields(self):
        s = zoo.summarize(self.spec)
        c, h, w = self.spec.input_shape
        macs = s["float_macs"] + s["binary_macs"]
        return {"model": self.model, "batch": self.batch, "channels": c, "height": h,
                "width": w, "params": s["params"], "float_bytes": s["float_bytes"],
                "packed_bytes": s["binary_bytes"],
                "binary_mac_share": s["binary_macs"] / macs if macs else None}

    def describe(self):
        c, h, w = self.spec.input_shape
        return f"model {self.model}, batch {self.batch} of {h}x{w}x{c}"


def net_grid(models, batches):
    return [NetShape(zoo.get_model(m).name, b) for m in models for b in batches]


def net_operands(shape, seed):
    model = shape.spec
    c, h, w = model.input_shape
    rng = np.random.default_rng(limits.check_seed(seed))
    x = rng.standard_normal((shape.batch, h, w, c), dtype=np.float32)
    return model, weights.model_tensors(model, seed), x


def net_prepare(name, operands, threads):
    model, tensors, x = operands
    if net_method(name).engine:   # TensorFlow is imported only here, by the adapter
        return peers.prepare_net(name, model, tensors, x, threads)
    return network.prepare(model, tensors, x, engine=name, threads=threads)


class NetCheck:
    """Each engine's logits against the plain numpy network on the same
    weights and input. bnnbench's runtime within network.check's bound (its
    binary layers are exact integers); a peer engine folds batch norm in
    float32, so a binary activation next to its threshold may flip: it must
    pick the same class for every image (top-1 agreement), and the largest
    logit difference is kept as the row's max_abs_error."""

    def __init__(self, model, tensors, x, seed=0):
        self.model, self.tensors, self.x = model, tensors, x
        self._refs = {}

    def ref(self, float_twin):
        if float_twin not in self._refs:
            self._refs[float_twin] = numpy_net.numpy_forward(self.model, self.tensors, self.x,
                                                             float_twin=float_twin)
        return self._refs[float_twin]

    def check(self, name, out, run=None):
        """(ok, max_abs_error); `run`, the prepared call that gave `out`, lets
        bnnbench's runtime be checked bit by bit (network.verify)."""
        method = net_method(name)
        if method.engine is None and run is not None:
            ok, err, _ = network.verify(self.model, self.tensors, self.x, run)
            return ok, err
        ref = self.ref(method.kind == "float")
        if out.shape != ref.shape:
            return False, float("inf")
        err = float(np.max(np.abs(out.astype(np.float64) - ref), initial=0))
        if method.engine is None:
            return network.check(self.model, out, ref)[0], err
        return bool(np.array_equal(out.argmax(axis=1), ref.argmax(axis=1))), err


def net_bytes(shape):
    """Peak bytes of one network's steps: parameters (as floats, packed, and
    in the reference) and every layer's activations (float32 in the
    runtime, float64 twice in the references) for the batch."""
    infos = zoo.resolve(shape.spec)
    params = sum(i.params for i in infos)
    acts = sum(int(np.prod(i.out_shape)) for i in infos) * shape.batch
    return 16 * params + (4 + 16) * acts


MODEL = Level(
    name="model", title="whole networks", all_methods=NET_METHODS,
    methods=tuple(m.name for m in NET_METHODS if m.name not in _net_unavailable()),
    lookup=net_method, baseline="net_float", headline=("net_bnnbench",), profile_defaults=(),
    shape_keys=("model", "batch", "channels", "height", "width"),
    blas_methods=frozenset({"net_float"}), make_operands=net_operands, prepare=net_prepare,
    check=lambda ops, seed: NetCheck(*ops, seed=seed), shape_bytes=net_bytes,
    shrink_hint="use a smaller --batch", roofline=False)


LEVELS = {level.name: level for level in (GEMM, CONV, MODEL)}
BASELINES = {name: level.baseline for name, level in LEVELS.items()}
# Columns naming a shape at any level, for frames that hold several levels.
ALL_SHAPE_KEYS = tuple(dict.fromkeys(k for level in LEVELS.values() for k in level.shape_keys))
# Every method of every level in registry order: how tables sort methods.
METHOD_ORDER = {m.name: i for i, m in enumerate(m for level in LEVELS.values()
                                                 for m in level.all_methods)}


def get(name):
    """The level called `name`, or a one-line BnnbenchError."""
    if name not in LEVELS:
        raise BnnbenchError(f"unknown level {name!r}; levels: {', '.join(LEVELS)}")
    return LEVELS[name]


def of_method(name):
    """The level whose registry has method `name`, or None."""
    return next((level for level in LEVELS.values() if name in level.by_name), None)
