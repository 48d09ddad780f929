"""Convolution layers as GEMMs, and the sweep grids over them.

A conv layer with `filters` output channels, a kernel x kernel window over
`channels` input channels, a batch of `batch` images and an out_size x
out_size output becomes C[M, N] = A[M, K] . B[K, N] (im2col view) with
M = filters, K = kernel^2 * channels, N = batch * out_size^2.
"""
import itertools
from dataclasses import asdict, dataclass

# BMXNet's GEMM experiment (Yang et al., ACM MM 2017).
DEFAULT_CHANNELS = (1, 32, 64, 128, 256, 512)
DEFAULT_FILTERS = (64,)
DEFAULT_KERNEL = (5,)
DEFAULT_BATCH = 200
DEFAULT_OUT_SIZE = 8
# --quick: the same experiment, small enough for a smoke test.
QUICK_CHANNELS = (1, 32)
QUICK_BATCH = 8


class GemmDims:
    """M, K and ops of a conv layer's im2col GEMM, from its filters, kernel
    and channels; N (output pixels) is the layer class's own."""

    @property
    def M(self):
        return self.filters

    @property
    def K(self):
        return self.kernel * self.kernel * self.channels

    @property
    def ops(self):
        """2*M*N*K: one multiply (xnor) and one add (popcount) per MAC."""
        return 2 * self.M * self.N * self.K


@dataclass(frozen=True, order=True)
class ConvShape(GemmDims):
    channels: int
    filters: int
    kernel: int
    batch: int
    out_size: int

    @property
    def N(self):
        return self.batch * self.out_size * self.out_size

    def fields(self):
        return dict(asdict(self), M=self.M, N=self.N, K=self.K)

    def describe(self):
        return (f"channels={self.channels} filters={self.filters} kernel={self.kernel} "
                f"batch={self.batch} out={self.out_size} (M={self.M} N={self.N} K={self.K})")


def grid(channels=DEFAULT_CHANNELS, filters=DEFAULT_FILTERS, kernel=DEFAULT_KERNEL,
         batch=DEFAULT_BATCH, out_size=DEFAULT_OUT_SIZE):
    """Every combination of the given values, in sweep order."""
    return [ConvShape(c, f, k, batch, out_size)
            for f, k, c in itertools.product(filters, kernel, channels)]
