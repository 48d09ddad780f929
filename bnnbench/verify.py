"""Exactness checks: every method against a plain numpy reference.

xnor methods must equal sign(a) @ sign(b) exactly. Float methods must be
within a rounding bound of a float64 product: 4 * eps32 * sqrt(K) * (|a| @ |b|),
far above honest rounding noise and far below the error of a dropped term.
"""
import numpy as np

from . import kernels

EPS32 = float(np.finfo(np.float32).eps)


def signs(x):
    return np.where(x >= 0, np.float32(1), np.float32(-1))


class Reference:
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
            bound = 4 * EPS32 * np.sqrt(max(1, self.a.shape[1])) * (np.abs(a64) @ np.abs(b64))
            self._float = (exact, bound)
        return self._float

    def check(self, method_name, out):
        """(ok, max_abs_error) for one method's output."""
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
        ref = Reference(a, b, seed=seed)
        for name in methods:
            for t in threads:
                ok, err = ref.check(name, kernels.gemm(name, a, b, threads=t))
                if not ok:
                    failures.append(f"{name} threads={t} M={m} N={n} K={k}: max error {err:g}")
        if progress:
            progress.advance()
    return failures
