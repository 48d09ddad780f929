"""Whole convolution layers (bnnbench sweep --level conv): time per layer of
bnnbench's own layer methods over BMXNet's channel sweep, and the layer
speedup of conv_xnor_64(_omp) over conv_float_blas measured side by side.

Commits before the layer level have no layer registry: every benchmark here
skips there. Peer engines are left to `bnnbench sweep` (they need the peers
extra, which asv's per-commit environments do not install).
"""
import functools

from .common import CHANNELS, SEED, THREADS, PinnedBlas, layer_level, settle
from .bench_track import median_s

LAYER_METHODS = ["conv_float_blas", "conv_xnor_32", "conv_xnor_32_omp", "conv_xnor_64",
                 "conv_xnor_64_omp"]
TRACK_CHANNELS = [64, 256, 512]
BASELINE = "conv_float_blas"


def skip_unless_layer_runs(method, threads, natural_threads_only=False):
    conv = layer_level()[0]
    if method not in conv.CONV_METHODS:
        raise NotImplementedError(f"{method} is not available in this build")
    parallel = conv.BY_NAME[method].parallel
    if not parallel and threads > 1:
        raise NotImplementedError(f"{method} is single-threaded")
    if natural_threads_only and parallel and threads != max(THREADS):
        raise NotImplementedError(f"{method} runs on {max(THREADS)} threads only here")


@functools.lru_cache(maxsize=1)
def layer_operands(channels):
    _, layer_shapes, make_operands, _ = layer_level()
    return make_operands(layer_shapes.grid(channels=(channels,))[0], SEED)


@functools.lru_cache(maxsize=2)
def checked_layer(method, channels, threads):
    """The layer method's timed call, after its output was checked against
    the numpy reference (exactly for binary layers)."""
    conv, _, _, layer_check = layer_level()
    ops = layer_operands(channels)
    run = conv.prepare(method, *ops, threads=threads)
    ok, err = layer_check(*ops, seed=SEED).check(method, run())
    if not ok:
        raise AssertionError(f"{method}: layer output differs from the numpy reference "
                             f"(max abs error {err:g}); not timing it")
    settle(method, threads)
    return run


class TimeConvLayer(PinnedBlas):
    """BMXNet's layer (12x12 input, 5x5, 64 filters, batch 200) over the
    channel sweep, on 1 thread and on every core."""

    params = [LAYER_METHODS, CHANNELS, THREADS]
    param_names = ["method", "channels", "threads"]
    timeout = 600
    repeat = (5, 20, 10.0)
    rounds = 2

    def setup(self, method, channels, threads):
        skip_unless_layer_runs(method, threads)
        self.pin_blas(threads)
        self.run = checked_layer(method, channels, threads)

    def time_layer(self, method, channels, threads):
        self.run()


class TrackConvSpeedup(PinnedBlas):
    """conv_float_blas median / layer method median, side by side in one
    process: conv_xnor_64 on 1 thread, conv_xnor_64_omp on every core."""

    params = [["conv_xnor_64", "conv_xnor_64_omp"], TRACK_CHANNELS, THREADS]
    param_names = ["method", "channels", "threads"]
    unit = "x conv_float_blas"
    timeout = 600

    def setup(self, method, channels, threads):
        skip_unless_layer_runs(method, threads, natural_threads_only=True)
        self.pin_blas(threads)
        self.baseline = checked_layer(BASELINE, channels, threads)
        self.candidate = checked_layer(method, channels, threads)

    def track_layer_speedup(self, method, channels, threads):
        base = median_s(self.baseline)
        settle(method, threads)
        return base / median_s(self.candidate)
