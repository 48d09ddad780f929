"""Method registry and the public entry points gemm() and pack_signs().

A method turns float32 operands a (M, K) and b (K, N) into C (M, N). Each
method is prepared once per shape (weights packed, buffers allocated: what a
deployed model does ahead of time) and then run many times; only run() is
timed. Only binarize_* methods pack the activations inside run().
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from threadpoolctl import threadpool_limits

from .. import _bitpack, _float_gemm, _xnor_gemm
from .._buildinfo import build_info
from ..errors import BnnbenchError
from .registry import lookup
from ..limits import check_int, check_memory, check_threads

BUILD = build_info()
WORD_DTYPES = {32: np.uint32, 64: np.uint64}


@dataclass(frozen=True)
class Method:
    name: str
    kind: str                 # "float" (GFLOP/s) or "xnor" (Gbit-op/s)
    word_bits: Optional[int]  # packing word for xnor methods
    parallel: bool            # honours threads > 1
    binarizes_input: bool     # packs the activations inside the timed call
    needs_openmp: bool
    description: str


ALL_METHODS = (
    Method("float_blas", "float", None, True, False, False,
           "numpy matmul on float32: the platform BLAS, threads pinned"),
    Method("float_gemm", "float", None, False, False, False,
           "Cython blocked float32 GEMM, one thread"),
    Method("float_gemm_omp", "float", None, True, False, True,
           "Cython blocked float32 GEMM, OpenMP threads"),
    Method("xnor_32", "xnor", 32, False, False, False,
           "xnor-popcount GEMM on 32-bit words, one thread"),
    Method("xnor_32_omp", "xnor", 32, True, False, True,
           "xnor-popcount GEMM on 32-bit words, OpenMP threads"),
    Method("xnor_64", "xnor", 64, False, False, False,
           "xnor-popcount GEMM on 64-bit words, one thread"),
    Method("xnor_64_omp", "xnor", 64, True, False, True,
           "xnor-popcount GEMM on 64-bit words, OpenMP threads"),
    Method("binarize_xnor_64_omp", "xnor", 64, True, True, True,
           "sign + bit-pack of the activations, then xnor_64_omp, timed together"),
)
BY_NAME = {m.name: m for m in ALL_METHODS}
METHODS = tuple(m.name for m in ALL_METHODS if BUILD["openmp"] or not m.needs_openmp)


def method(name):
    """The Method called `name`, or a one-line BnnbenchError saying why not."""
    return lookup(name, BY_NAME, {m: "kernels built without OpenMP" for m in BY_NAME
                                  if m not in METHODS})


def blas_threads(threads):
    """Context manager pinning the platform BLAS to `threads` threads."""
    return threadpool_limits(limits=check_threads(threads), user_api="blas")


def cache_aligned_zeros(shape, dtype, align=64):
    """Zeroed array whose data starts on a cache-line boundary.

    numpy only guarantees 16 bytes; the kernels' 32- and 64-byte vector loads
    and stores then straddle cache lines, which costs 4-10 % at small K.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.zeros(nbytes + align, dtype=np.uint8)
    start = -buf.ctypes.data % align
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def pack_signs(x, word_bits=64):
    """Pack the sign bits of x along its last axis into uint32/uint64 words.

    Bit k % W of word k // W is 1 where x[..., k] >= 0 (sign +1) and 0
    otherwise; padding bits of the last word are 0.
    """
    word_bits = check_int("word_bits", word_bits, choices=tuple(WORD_DTYPES))
    x = np.asarray(x)
    if x.ndim == 0:
        raise BnnbenchError("pack_signs needs an array with at least one axis")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
            or x.dtype == np.bool_):
        raise BnnbenchError(f"pack_signs needs a real numeric array, got dtype {x.dtype}")
    if x.dtype != np.float32:
        # Compare in the source dtype: a cast could turn -1e-50 into -0.0 (>= 0).
        x = np.where(x >= 0, np.float32(1), np.float32(-1))
    k = x.shape[-1]
    rows = np.ascontiguousarray(x.reshape(math.prod(x.shape[:-1]), k))  # -1 fails when k == 0
    out = np.zeros((rows.shape[0], -(-k // word_bits)), dtype=WORD_DTYPES[word_bits])
    _bitpack.pack_rows(rows, out, 1)
    return out.reshape(x.shape[:-1] + (out.shape[1],))


def pack_panels(b, word_bits=64, threads=1, out=None):
    """Pack b (K, N) along K into the xnor kernels' panel layout."""
    threads = check_threads(threads)
    word_bits = check_int("word_bits", word_bits, choices=tuple(WORD_DTYPES))
    k, n = b.shape
    nr = _bitpack.panel_width(word_bits)
    shape = (-(-n // nr), -(-k // word_bits), nr)
    if out is None:
        out = cache_aligned_zeros(shape, WORD_DTYPES[word_bits])
    _bitpack.pack_panels(b, out, threads)
    return out


def check_operands(a, b, threads):
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray):
            raise BnnbenchError(f"{name} must be a numpy array, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise BnnbenchError(f"{name} must be float32, got {x.dtype}")
        if x.ndim != 2:
            raise BnnbenchError(f"{name} must be 2-D, got {x.ndim}-D with shape {x.shape}")
    if a.shape[1] != b.shape[0]:
        raise BnnbenchError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    return check_threads(threads)


def prepare_bytes(m, rows, k, n):
    """What prepare() allocates for method `m` on (rows, k) @ (k, n): the
    output, and for xnor methods both packed operands (Python ints: a shape
    that needs terabytes is a number here, not an overflow)."""
    need = 4 * rows * n
    if m.kind == "xnor":
        words = -(-k // m.word_bits) * m.word_bits // 8
        nr = _bitpack.panel_width(m.word_bits)
        need += rows * words + -(-n // nr) * nr * words
    return need


def prepare(name, a, b, threads=1) -> Callable[[], np.ndarray]:
    """Do the untimed set-up of method `name` and return its timed call.

    The call returns the output array, which it reuses between calls.
    """
    m = method(name)
    threads = check_operands(a, b, threads)
    check_memory(prepare_bytes(m, a.shape[0], a.shape[1], b.shape[1]),
                 f"{name} on a {a.shape} @ b {b.shape}", "use smaller operands")
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    nthreads = threads if m.parallel else 1
    rows, k, n = a.shape[0], a.shape[1], b.shape[1]
    if m.kind == "float":
        out = cache_aligned_zeros((rows, n), np.float32)
        if m.name == "float_blas":
            return lambda: np.matmul(a, b, out=out)

        def run_float():
            _float_gemm.float_gemm(a, b, out, nthreads)
            return out
        return run_float

    out = cache_aligned_zeros((rows, n), np.int32)
    packed_a = pack_signs(a, m.word_bits)
    panels = pack_panels(b, m.word_bits, nthreads)
    if m.binarizes_input:
        def run_binarize():
            _bitpack.pack_panels(b, panels, nthreads)
            _xnor_gemm.xnor_gemm(packed_a, panels, k, out, nthreads)
            return out
        return run_binarize

    def run_xnor():
        _xnor_gemm.xnor_gemm(packed_a, panels, k, out, nthreads)
        return out
    return run_xnor


def gemm(method_name, a, b, threads=1):
    """C = a @ b by `method_name`: float32 for float methods, exact int32
    sign(a) @ sign(b) for xnor methods (sign(x) = +1 for x >= 0, else -1)."""
    run = prepare(method_name, a, b, threads)
    with blas_threads(check_threads(threads) if BY_NAME[method_name].parallel else 1):
        return run().copy()
