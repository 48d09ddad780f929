"""Time per GEMM call of every method over BMXNet's sweeps.

C[M,N] = A[M,K] . B[K,N] with M = filters, K = kernel^2 * channels,
N = batch * out_size^2 (bnnbench.shapes). Weights are packed in setup, as
`bnnbench sweep` does; only binarize_* methods pack the activations in the
timed call. Shape dimensions that are not parameters are bnnbench's defaults.
"""
from .common import (ALL_METHODS, CHANNELS, FILTERS, KERNELS, SIDE_CHANNELS, THREADS,
                     PinnedBlas, checked_call, shape, skip_unless_runs)


class _Gemm(PinnedBlas):
    # Calls range from microseconds (1 channel) to ~0.4 s (float at 512).
    timeout = 600
    # 5 to 20 samples per round, at most 10 s each; two rounds in separate
    # processes. `asv run -a repeat=... -a rounds=...` overrides these.
    repeat = (5, 20, 10.0)
    rounds = 2

    def start(self, method, conv_shape, threads, natural_threads_only=False):
        skip_unless_runs(method, threads, natural_threads_only)
        self.pin_blas(threads)
        self.run = checked_call(method, conv_shape, threads)


class TimeGemmChannels(_Gemm):
    """The BMXNet channel sweep (64 filters, 5x5, batch 200, 8x8 outputs) on
    1 thread and on every core."""

    params = [ALL_METHODS, CHANNELS, THREADS]
    param_names = ["method", "channels", "threads"]

    def setup(self, method, channels, threads):
        self.start(method, shape(channels), threads)

    def time_gemm(self, method, channels, threads):
        self.run()


class TimeGemmFilters(_Gemm):
    """Filters (M) at 64 input channels; single-threaded methods on 1 thread,
    the others on every core."""

    params = [ALL_METHODS, SIDE_CHANNELS, FILTERS, THREADS]
    param_names = ["method", "channels", "filters", "threads"]

    def setup(self, method, channels, filters, threads):
        self.start(method, shape(channels, filters=filters), threads, natural_threads_only=True)

    def time_gemm(self, method, channels, filters, threads):
        self.run()


class TimeGemmKernel(_Gemm):
    """Kernel size (K = k^2 * channels) at 64 input channels; single-threaded
    methods on 1 thread, the others on every core."""

    params = [ALL_METHODS, SIDE_CHANNELS, KERNELS, THREADS]
    param_names = ["method", "channels", "kernel", "threads"]

    def setup(self, method, channels, kernel, threads):
        self.start(method, shape(channels, kernel=kernel), threads, natural_threads_only=True)

    def time_gemm(self, method, channels, kernel, threads):
        self.run()
