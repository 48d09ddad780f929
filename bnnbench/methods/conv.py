"""Layer-level method registry and the public entry point conv2d().

A layer method turns a float32 NHWC feature map x [B, H, W, C] and OHWI
weights w [F, kh, kw, C] into the layer's output [B, Ho, Wo, F]: float32
for float methods, exact int32 sign(x) (*) sign(w) for binary ones (padding
pixels +1, see conv_shapes). prepare() shares kernels.prepare()'s contract:
untimed set-up (weights packed or converted, buffers allocated: what a
deployed model does ahead of time) returns the timed call, which returns its
output array. Everything from the float feature map to the output is inside
the call: im2col for float, sign + bit-pack and bit-level im2col for binary.

Peer engines (Larq Compute Engine, TF Lite) live in bnnbench.methods.peers and are
imported only when one of their methods is prepared.
"""
import numbers
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _bconv, _bitpack

from . import peers
from .registry import lookup
from .layer_shapes import PADDINGS, layer_geometry
from ..errors import BnnbenchError
from ..limits import MAX_DIMENSION, _short, check_int, check_memory, check_threads
from .kernels import BUILD, WORD_DTYPES, blas_threads, cache_aligned_zeros, pack_signs


@dataclass(frozen=True)
class ConvMethod:
    name: str
    kind: str                 # "float" or "xnor" (binary), as for GEMM methods
    word_bits: Optional[int]
    parallel: bool
    needs_openmp: bool
    engine: Optional[str]     # None: bnnbench's kernels; else a module of bnnbench.methods.peers
    description: str


OWN_METHODS = (
    ConvMethod("conv_float_blas", "float", None, True, False, None,
               "im2col into a preallocated buffer, then the platform BLAS"),
    ConvMethod("conv_xnor_32", "xnor", 32, False, False, None,
               "sign + bit-pack of the feature map, bit-level im2col, xnor GEMM on 32-bit words"),
    ConvMethod("conv_xnor_32_omp", "xnor", 32, True, True, None,
               "conv_xnor_32 on OpenMP threads"),
    ConvMethod("conv_xnor_64", "xnor", 64, False, False, None,
               "sign + bit-pack of the feature map, bit-level im2col, xnor GEMM on 64-bit words"),
    ConvMethod("conv_xnor_64_omp", "xnor", 64, True, True, None,
               "conv_xnor_64 on OpenMP threads"),
)
ALL_CONV_METHODS = OWN_METHODS + tuple(ConvMethod(**m) for m in peers.METHODS)
BY_NAME = {m.name: m for m in ALL_CONV_METHODS}


def unavailable():
    """{method: one-line reason} for the layer methods this install lacks."""
    reasons = {}
    for m in ALL_CONV_METHODS:
        if m.needs_openmp and not BUILD["openmp"]:
            reasons[m.name] = "kernels built without OpenMP"
        elif m.engine:
            reason = peers.missing(m.engine)
            if reason:
                reasons[m.name] = reason
    return reasons


CONV_METHODS = tuple(m.name for m in ALL_CONV_METHODS if m.name not in unavailable())


def method(name):
    """The ConvMethod called `name`, or a one-line BnnbenchError saying why not."""
    return lookup(name, BY_NAME, unavailable(), "conv method")


def check_padding(padding):
    """'valid', 'same', or pixels as a plain int in 0..MAX_DIMENSION."""
    if isinstance(padding, str) and padding in PADDINGS:
        return padding
    if (isinstance(padding, (bool, np.bool_, str)) or not isinstance(padding, numbers.Integral)
            or not 0 <= padding <= MAX_DIMENSION):
        raise BnnbenchError(f"padding must be 'valid', 'same' or pixels >= 0 and <= "
                            f"{MAX_DIMENSION}, got {type(padding).__name__} "
                            f"{_short(padding) if isinstance(padding, int) else repr(padding)[:40]}")
    return int(padding)


def check_layer(x, w, stride, padding, threads):
    """Geometry of a valid layer call, or a one-line BnnbenchError."""
    for label, arr in (("x", x), ("w", w)):
        if not isinstance(arr, np.ndarray):
            raise BnnbenchError(f"{label} must be a numpy array, got {type(arr).__name__}")
        if arr.dtype != np.float32:
            raise BnnbenchError(f"{label} must be float32, got {arr.dtype}")
        if arr.ndim != 4:
            raise BnnbenchError(f"{label} must be 4-D ({'NHWC' if label == 'x' else 'OHWI'}), "
                                f"got {arr.ndim}-D with shape {arr.shape}")
    check_threads(threads)
    stride = check_int("stride", stride, 1, MAX_DIMENSION)
    return layer_geometry(x.shape, w.shape, stride, check_padding(padding))


def layer_buffer_bytes(m, x_shape, w_shape, geom, threads):
    """What prepare() allocates for layer method `m`, in Python ints (a
    terabyte layer is a number here, not an overflow): im2col, weights and
    output for float; packed map, weight panels, workspace, output for xnor."""
    b, h, wd, c = x_shape
    f, kh, kw, _ = w_shape
    ho, wo = geom[0], geom[1]
    n, k = b * ho * wo, kh * kw * c
    out = 4 * n * f
    if m.kind == "float" or m.engine:
        return 4 * n * k + 4 * f * k + out
    word = m.word_bits // 8
    cw = -(-c // m.word_bits)
    kwords = _bconv.row_words(kh, kw, c, m.word_bits)[0]
    nr = _bitpack.panel_width(m.word_bits)
    panels = -(-f // nr) * nr * kwords * word
    work = int(np.prod(_bconv.work_shape(kwords, threads), dtype=object)) * word
    return b * h * wd * cw * word + panels + work + out


def held_bytes(*arrays):
    return int(sum(a.nbytes for a in arrays))


def _prepare_float(x, w, geom, stride, threads):
    b, h, wd, c = x.shape
    f, kh, kw, _ = w.shape
    ho, wo, top, left = geom
    n, k = b * ho * wo, kh * kw * c
    cols = cache_aligned_zeros((n, k), np.float32)
    # cols[N, K] @ W^T[K, F] writes [N, F], which is NHWC, with no transpose;
    # the orientations OpenBLAS was timed with are in docs/measurements.md.
    wmat = np.ascontiguousarray(w.reshape(f, k).T)
    out = cache_aligned_zeros((b, ho, wo, f), np.float32)
    out2d = out.reshape(n, f)

    def im2col():
        _bconv.float_im2col(x, ho, wo, kh, kw, stride, top, left, cols, threads)

    def run():
        im2col()
        np.matmul(cols, wmat, out=out2d)
        return out
    run.held_bytes = held_bytes(cols, wmat, out)
    run.parts = {"im2col": im2col}   # the sweep reports its share of the layer
    return run


def weight_panels(w, word_bits):
    """OHWI weights sign-packed as the layer's im2col rows are
    (_bconv.row_words: per pixel along C, or a narrow layer's window bits
    back to back) and laid out as the xnor tiles' panels: (ceil(F/NR),
    row words, NR)."""
    f, kh, kw, c = w.shape
    words, dense = _bconv.row_words(kh, kw, c, word_bits)
    if dense:
        w = w.reshape(f, 1, 1, kh * kw * c)
    rows = pack_signs(w, word_bits).reshape(f, -1)
    assert rows.shape[1] == words
    nr = _bitpack.panel_width(word_bits)
    npanels = -(-f // nr)
    padded = np.zeros((npanels * nr, rows.shape[1]), dtype=rows.dtype)
    padded[:f] = rows
    panels = cache_aligned_zeros((npanels, rows.shape[1], nr), rows.dtype)
    panels[...] = padded.reshape(npanels, nr, rows.shape[1]).transpose(0, 2, 1)
    return panels


def _prepare_xnor(x, w, geom, stride, threads, word_bits):
    b, h, wd, c = x.shape
    f, kh, kw, _ = w.shape
    ho, wo, top, left = geom
    dtype = WORD_DTYPES[word_bits]
    cw = -(-c // word_bits)
    weights = weight_panels(w, word_bits)
    panels = _bconv.tile_panels(weights)   # as the tiles read them, ahead of time
    pad_pixel = pack_signs(np.ones(c, np.float32), word_bits)   # +1 padding
    packed = cache_aligned_zeros((b, h, wd, cw), dtype)
    work = cache_aligned_zeros(_bconv.work_shape(weights.shape[1], threads), dtype)
    out = cache_aligned_zeros((b, ho, wo, f), np.int32)
    k = kh * kw * c

    def run():
        _bconv.bconv_layer(x, packed, pad_pixel, panels, kh, kw, stride, top, left, k, out,
                           work, threads)
        return out
    run.held_bytes = held_bytes(panels, packed, work, out)
    return run


def prepare(name, x, w, stride=1, padding="valid", threads=1):
    """Do the untimed set-up of layer method `name` and return its timed call.

    The call returns the output array, which it reuses between calls; it
    carries `held_bytes`: what the method holds while it runs (weights as
    stored, packed or im2col activations, workspace, output)."""
    m = method(name)
    geom = check_layer(x, w, stride, padding, threads)
    stride, padding = int(stride), check_padding(padding)
    nthreads = check_threads(threads) if m.parallel else 1
    check_memory(layer_buffer_bytes(m, x.shape, w.shape, geom, nthreads),
                 f"layer {name} on x {x.shape} and w {w.shape} (output {geom[0]}x{geom[1]}, "
                 f"stride={stride}, padding={padding!r})",
                 "use a smaller batch, input or padding")
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    if m.engine:
        return peers.prepare(m.engine, name, x, w, stride, padding, nthreads)
    if m.kind == "float":
        return _prepare_float(x, w, geom, stride, nthreads)
    return _prepare_xnor(x, w, geom, stride, nthreads, m.word_bits)


def conv2d(method_name, x, w, stride=1, padding="valid", threads=1):
    """The layer [B, Ho, Wo, F] of x [B, H, W, C] and w [F, kh, kw, C] by one
    method: float32 for float methods, exact int32 sign(x) (*) sign(w) for
    binary ones (padding pixels read as +1)."""
    run = prepare(method_name, x, w, stride, padding, threads)
    with blas_threads(check_threads(threads) if BY_NAME[method_name].parallel else 1):
        return run().copy()
