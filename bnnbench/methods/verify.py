"""Exactness checks: every method against a plain numpy reference.

Binary (xnor) methods must equal sign(a) @ sign(b) exactly: a GEMM, or a
whole layer with +1 padding (numpy_conv). Float methods must be within a
rounding bound of a float64 product, float_bound: far above honest rounding
noise and far below the error of a dropped term.
"""
import numpy as np

from . import conv, kernels
from .layer_shapes import layer_geometry

EPS32 = float(np.finfo(np.float32).eps)


def float_bound(abs_product, k):
    """Rounding bound of a float32 dot product of length k, given the
    float64 product of the absolute values: 4 * eps32 * sqrt(k) * |a|.|b|."""
    return 4 * EPS32 * np.sqrt(max(1, k)) * abs_product


def signs(x):
    return np.where(x >= 0, np.float32(1), np.float32(-1))


class GemmCheck:
    """Lazily computed references for one pair of operands.

    The xnor reference is a BLAS product of +-1 float32 matrices, exact while
    K < 2**24. Float methods are checked on a sample of columns only, which
    keeps verification cheap next to the timing it guards.
    """

    def __init__(self, a, b, columns=256, seed=0):
        self.a, self.b = a, b
        n = b.shape[1]
        rng = np.random.default_rng(seed)
        self.cols = np.sort(rng.choice(n, size=min(columns, n), replace=False))
        self._xnor = self._float = None

    def xnor(self):
        if self._xnor is None:
            if self.a.shape[1] >= 2 ** 24:
                raise ValueError("K too large for an exact float32 reference")
            self._xnor = (signs(self.a) @ signs(self.b)).astype(np.int32)
        return self._xnor

    def float(self):
        if self._float is None:
            a64 = self.a.astype(np.float64)
            b64 = self.b[:, self.cols].astype(np.float64)
            exact = a64 @ b64
            bound = float_bound(np.abs(a64) @ np.abs(b64), self.a.shape[1])
            self._float = (exact, bound)
        return self._float

    def check(self, method_name, out, run=None):
        """(ok, max_abs_error) for one method's output (`run`: unused here)."""
        if kernels.BY_NAME[method_name].kind == "xnor":
            ref = self.xnor()
            if out.dtype != np.int32 or out.shape != ref.shape:
                return False, float("inf")
            return bool(np.array_equal(out, ref)), float(np.max(np.abs(out - ref), initial=0))
        exact, bound = self.float()
        got = out[:, self.cols].astype(np.float64)
        err = np.abs(got - exact)
        ok = out.dtype == np.float32 and bool(np.all(err <= bound + 1e-30))
        return ok, float(np.max(err, initial=0))


# Awkward shapes: K around word boundaries, M and N of 1 and not multiples of
# any tile (xnor tile 4 rows x one panel: 8 or 16 columns, 16 or 32 on
# AVX-512; float tile 6 x 16; panel blocks of 64).
AWKWARD_K = (1, 2, 31, 32, 33, 63, 64, 65, 127, 129, 511, 513, 1025)
AWKWARD_MN = ((1, 1), (1, 17), (17, 1), (5, 7), (4, 8), (6, 16), (7, 130), (13, 65), (64, 100))


def verify_all(methods=None, threads=(1, 2), seed=0, progress=None):
    """Check every method on every awkward shape; return a list of failures."""
    rng = np.random.default_rng(seed)
    methods = methods or kernels.METHODS
    failures = []
    cases = [(m, n, k) for (m, n) in AWKWARD_MN for k in AWKWARD_K]
    cases += [(64, 1600, 25 * 32), (33, 257, 25 * 7)]  # sweep-like, multiple blocks
    if progress:
        progress.total = len(cases)
    for m, n, k in cases:
        if progress:
            progress.step(f"M={m} N={n} K={k}")
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        a[0, 0] = 0.0          # sign(0) = +1 must hold in every kernel
        b[-1, -1] = -0.0
        ref = GemmCheck(a, b, seed=seed)
        for name in methods:
            for t in threads:
                ok, err = ref.check(name, kernels.gemm(name, a, b, threads=t))
                if not ok:
                    failures.append(f"{name} threads={t} M={m} N={n} K={k}: max error {err:g}")
        if progress:
            progress.advance()
    return failures


# ------------------------------------------------------------- whole layers

def _windows(x, kh, kw, stride, geom, pad_value):
    """All kh x kw windows of x [B, H, W, C] as [B, Ho, Wo, kh, kw, C]."""
    ho, wo, top, left = geom
    b, h, wd, c = x.shape
    bottom = max(0, (ho - 1) * stride + kh - h - top)
    right = max(0, (wo - 1) * stride + kw - wd - left)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, ::stride, ::stride][:, :ho, :wo]          # [B, Ho, Wo, C, kh, kw]
    return win.transpose(0, 1, 2, 4, 5, 3)


def numpy_conv(x, w, stride=1, padding="valid", binary=False):
    """The layer by plain numpy: binary as exact int32 sign(x) (*) sign(w)
    with +1 padding, float in float64 with zero padding."""
    geom = layer_geometry(x.shape, w.shape, stride, padding)
    f, kh, kw, c = w.shape
    if binary:
        xs = np.where(x >= 0, 1, -1).astype(np.int64)
        ws = np.where(w >= 0, 1, -1).astype(np.int64)
        win = _windows(xs, kh, kw, stride, geom, 1)
        return np.tensordot(win, ws, axes=([3, 4, 5], [1, 2, 3])).astype(np.int32)
    win = _windows(x.astype(np.float64), kh, kw, stride, geom, 0)
    return np.tensordot(win, w.astype(np.float64), axes=([3, 4, 5], [1, 2, 3]))


def numpy_depthwise(x, w, stride=1, padding="valid"):
    """A depthwise conv by plain numpy in float64, zero padding: channel c of
    x [B, H, W, C] filtered by w [kh, kw, C][..., c]."""
    kh, kw, c = w.shape
    geom = layer_geometry(x.shape, (1, kh, kw, c), stride, padding)
    win = _windows(x.astype(np.float64), kh, kw, stride, geom, 0)   # [B, Ho, Wo, kh, kw, C]
    return (win * w.astype(np.float64)).sum(axis=(3, 4))


class LayerCheck:
    """Binary outputs against the exact reference in full; float outputs on
    a sample of output pixels within 4 * eps32 * sqrt(K) * (|x| (*) |w|),
    as GEMM rows are checked (GemmCheck)."""

    def __init__(self, x, w, stride, padding, pixels=256, seed=0):
        self.x, self.w, self.stride, self.padding = x, w, stride, padding
        self.pixels, self.seed = pixels, seed
        self._binary = self._float = None

    def binary(self):
        if self._binary is None:
            self._binary = numpy_conv(self.x, self.w, self.stride, self.padding, binary=True)
        return self._binary

    def float(self):
        if self._float is None:
            # Both references on the whole layer cost a float64 conv; a sample
            # of pixels from the im2col view keeps this cheap at 512 channels.
            cols = _windows(self.x, self.w.shape[1], self.w.shape[2], self.stride,
                                 layer_geometry(self.x.shape, self.w.shape, self.stride,
                                                     self.padding), 0)
            flat = cols.reshape(-1, int(np.prod(self.w.shape[1:])))
            rng = np.random.default_rng(self.seed)
            idx = np.sort(rng.choice(flat.shape[0], size=min(self.pixels, flat.shape[0]),
                                     replace=False))
            sample = flat[idx].astype(np.float64)
            wmat = self.w.reshape(self.w.shape[0], -1).astype(np.float64).T
            bound = float_bound(np.abs(sample) @ np.abs(wmat), wmat.shape[0])
            self._float = (idx, sample @ wmat, bound)
        return self._float

    def check(self, name, out, run=None):
        """(ok, max_abs_error) for one method's output (`run`: unused here)."""
        if conv.BY_NAME[name].kind == "xnor":
            ref = self.binary()
            if out.dtype != np.int32 or out.shape != ref.shape:
                return False, float("inf")
            return (bool(np.array_equal(out, ref)),
                    float(np.max(np.abs(out.astype(np.int64) - ref), initial=0)))
        idx, exact, bound = self.float()
        got = out.reshape(-1, out.shape[-1])[idx].astype(np.float64)
        if got.shape != exact.shape:
            return False, float("inf")
        err = np.abs(got - exact)
        return out.dtype == np.float32 and bool(np.all(err <= bound + 1e-30)), float(
            np.max(err, initial=0))


# Awkward layers (batch, height, width, channels, filters, kernel, stride,
# padding): C off word multiples and C = 1, stride 2, both paddings and
# explicit ones, kernels 1/3/5, batch 1, H != W, F off the panel width (8,
# 16 or 32 columns) and over one panel, and a batch that binary layers
# pipeline image by image on every thread count the tests use. The tests
# and `bnnbench verify` use them.
AWKWARD_LAYERS = [
    (1, 5, 7, 1, 3, 3, 1, "same"),
    (2, 9, 6, 33, 17, 3, 2, "same"),
    (1, 12, 12, 65, 70, 5, 1, "valid"),
    (3, 8, 11, 64, 5, 1, 1, "valid"),
    (1, 7, 7, 129, 33, 5, 2, "same"),
    (2, 6, 6, 32, 64, 3, 1, "same"),
    (1, 4, 4, 3, 2, 5, 1, "same"),      # kernel larger than the input: all edges
    (1, 10, 13, 31, 1, 3, 2, "valid"),
    (2, 9, 9, 96, 40, 5, 2, "valid"),
    (1, 3, 17, 200, 19, 1, 2, "same"),
    (2, 8, 9, 35, 6, 3, 2, 1),          # explicit padding (model specs)
    (1, 6, 6, 70, 9, 5, 1, 2),
    (7, 5, 6, 70, 17, 3, 2, "same"),    # images split unevenly over 2 and 3 threads
    (2, 7, 7, 16, 24, 3, 1, "same"),    # narrow: dense rows, 144 bits in 3 words
    (1, 7, 6, 48, 9, 3, 2, 1),          # dense rows whose pixels straddle words
    (2, 6, 5, 20, 7, 3, 1, "valid"),    # 20 bits a pixel: no power of two
]


def verify_layers(methods=None, threads=(1, 2), seed=0):
    """bnnbench's own layer methods on every awkward layer; a list of failures."""
    methods = methods or [m for m in conv.CONV_METHODS if not conv.BY_NAME[m].engine]
    rng = np.random.default_rng(seed)
    failures = []
    for b, h, w, c, f, k, stride, padding in AWKWARD_LAYERS:
        x = rng.standard_normal((b, h, w, c), dtype=np.float32)
        wt = rng.standard_normal((f, k, k, c), dtype=np.float32)
        ref = LayerCheck(x, wt, stride, padding, seed=seed)
        for name in methods:
            for t in threads:
                ok, err = ref.check(name, conv.conv2d(name, x, wt, stride, padding, t))
                if not ok:
                    failures.append(f"{name} threads={t} layer {b}x{h}x{w}x{c} filters={f} "
                                    f"kernel={k} stride={stride} padding={padding}: "
                                    f"max error {err:g}")
    return failures
