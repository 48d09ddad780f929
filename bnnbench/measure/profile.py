"""A model's conv and dense layers as GEMMs, timed float against binary.

Each conv or dense layer of a model spec becomes its im2col GEMM
C[M, N] = A[M, K] . B[K, N] with M = out channels, K = k*k*in channels and
N = batch * out_h * out_w (a dense layer: K = in features, N = batch). The
weights are A, packed once outside the timed call like a deployed model's;
the activations are B.

Every layer is timed with float_blas. Binary layers are also timed with each
binary method; float layers (the first and last, by the binarization policy)
are not, because a binary network runs them in float too: the binary total
counts their float_blas time. Measuring (verify each output exactly, then
time with warm-up and adaptive repeats) is the sweep's own step, reused.

At the layer level (--level conv) each layer is instead timed as a whole
layer from its float NHWC input (bnnbench.methods.conv): conv_float_blas is the
baseline and the binary candidates are conv_xnor_* methods; a dense layer
is a 1x1 conv over a 1x1 input with its input features as channels.
"""
from dataclasses import asdict, dataclass

from . import levels
from ..errors import BnnbenchError
from ..models.zoo import Conv, resolve

DEFAULT_BATCH = 16


class _ModelLayer:
    """What a model's layer offers the sweep at either level: its operation
    count, its row fields and a name for messages."""

    @property
    def ops(self):
        return 2 * self.M * self.N * self.K

    def fields(self):
        return asdict(self)

    def describe(self):
        return f"{self.model}.{self.layer} (M={self.M} N={self.N} K={self.K})"


@dataclass(frozen=True)
class LayerGemm(_ModelLayer):
    """One layer lowered to a GEMM (the sweep's shape interface)."""
    model: str
    layer: str
    type: str
    binary: bool
    channels: int      # input channels (dense: input features)
    filters: int       # output channels (dense: output features)
    kernel: int        # k of a k x k conv window (dense: 1)
    batch: int
    M: int
    K: int
    N: int


def _weight_layers(model, batch):
    """(layer info, its spec, M, K, N) of every conv and dense layer."""
    if batch < 1:
        raise BnnbenchError(f"batch must be >= 1, got {batch}")
    specs = {layer.name: layer for layer in model.layers}
    for info in resolve(model):
        if info.gemm is not None:
            m, k, n_per_image = info.gemm
            yield info, specs[info.name], m, k, batch * n_per_image


def layer_gemms(model, batch):
    """Every conv and dense layer of `model` as a LayerGemm for `batch` images."""
    out = []
    for info, spec, m, k, n in _weight_layers(model, batch):
        kernel = spec.kernel if isinstance(spec, Conv) else 1
        channels = spec.in_channels if isinstance(spec, Conv) else k
        out.append(LayerGemm(model.name, info.name, info.type, info.binary, channels, m,
                             kernel, batch, m, k, n))
    return out


@dataclass(frozen=True)
class LayerConv(_ModelLayer):
    """One layer as a whole conv layer (the layer sweep's shape interface)."""
    model: str
    layer: str
    type: str
    binary: bool
    channels: int
    filters: int
    kernel: int
    batch: int
    height: int
    width: int
    stride: int
    padding: object    # "valid", "same" or pixels on every side
    M: int
    K: int
    N: int

    @property
    def feature_map_bytes(self):
        return 4 * self.batch * self.height * self.width * self.channels


def layer_convs(model, batch):
    """Every conv and dense layer of `model` as a LayerConv for `batch` images."""
    out = []
    for info, spec, m, k, n in _weight_layers(model, batch):
        if isinstance(spec, Conv):
            c, h, w = info.in_shape
            geometry = (c, spec.kernel, h, w, spec.stride, spec.padding)
        else:   # dense: a 1x1 conv over a 1x1 input of k channels
            geometry = (k, 1, 1, 1, 1, "valid")
        c, kernel, h, w, stride, padding = geometry
        out.append(LayerConv(model.name, info.name, info.type, info.binary, c, m, kernel,
                             batch, h, w, stride, padding, m, k, n))
    return out


def check_methods(methods, level="gemm"):
    """The binary candidates: xnor-kind methods available in this build."""
    return levels.get(level).binary_methods(methods)


def default_methods(level="gemm"):
    level = levels.get(level)
    return [m for m in level.profile_defaults if m in level.methods]


def plan(gemms, methods, threads_list, level="gemm"):
    """(layer, threads, method) steps: the float baseline first for every
    layer and thread count, then the binary methods on binary layers;
    one-thread methods at threads=1 only."""
    level = levels.get(level)
    by_name, baseline = level.by_name, level.baseline
    steps = []
    for g in gemms:
        for t in threads_list:
            steps.append((g, t, baseline))
            if g.binary:
                steps += [(g, t, m) for m in methods if t == 1 or by_name[m].parallel]
    return steps


def totals(rows, methods, threads_list, level="gemm"):
    """Whole-network float and binary time per (method, threads).

    float_s sums float_blas over every layer. A binary method's binary_s sums
    that method on the binary layers and float_blas on the float layers. A
    total with a missing or unverified layer is left out, never guessed.
    """
    level = levels.get(level)
    by_name, baseline = level.by_name, level.baseline
    times = {(r["layer"], r["method"], r["threads"]): r["median_s"] for r in rows
             if r.get("verified") is True and r.get("median_s") is not None}
    layers = list(dict.fromkeys((r["layer"], r["binary"]) for r in rows))
    out = []
    for t in threads_list:
        base = [times.get((name, baseline, t)) for name, _ in layers]
        if None in base:
            continue
        float_s = sum(base)
        for m in methods:
            if t > 1 and not by_name[m].parallel:
                continue
            parts = [times.get((name, m if binary else baseline, t)) for name, binary in layers]
            if None in parts:
                continue
            binary_s = sum(parts)
            out.append({"method": m, "threads": t, "float_s": float_s, "binary_s": binary_s,
                        "speedup": float_s / binary_s if binary_s > 0 else None})
    return out
