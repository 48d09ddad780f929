"""Shared fixtures of the asv suites: parameters, operands, checked methods.

Everything comes from the installed bnnbench, never redefined here: shapes,
the method registries, the sweep's seeded operands, the numpy checks and
the pause after BLAS calls.

asv runs today's suites against the builds of older commits too, whose
modules lay flat in bnnbench/ before the layout by stage: this module is
the one place that knows both layouts (OLD_LAYOUT), and the suites import
bnnbench's parts from here.

asv runs every parameter combination in a process of its own and re-runs
setup() before each sample, so operands and prepared methods are cached per
process: only the first setup() of a combination pays for them.

asv maps results to parameters by position, and each commit's benchmarks
compute their params from that commit's bnnbench. That is safe because the
lists used are stable by design (method names are part of bnnbench's
interface and new methods go at the end of ALL_METHODS; the channel sweep is
BMXNet's experiment; threads depend on the machine only).
"""
import contextlib
import functools
import importlib
import time

import numpy as np

try:
    from bnnbench.measure import timing
    from bnnbench.measure.hostinfo import default_threads
    from bnnbench.measure.levels import gemm_operands as make_operands
    from bnnbench.measure.sweep import BLAS_SETTLE_S
    from bnnbench.methods import kernels, shapes
    from bnnbench.methods.verify import GemmCheck
    OLD_LAYOUT = False
except ModuleNotFoundError:   # a commit from before the layout by stage
    from bnnbench import kernels, shapes, timing
    from bnnbench.hostinfo import default_threads
    from bnnbench.sweep import BLAS_SETTLE_S, make_operands
    from bnnbench.verify import Reference as GemmCheck
    OLD_LAYOUT = True

BASELINE = "float_blas"
SEED = 0
# Every method the registry knows, also those this build lacks (skipped in
# setup), so the parameter grid is the same for every build.
ALL_METHODS = [m.name for m in kernels.ALL_METHODS]
CHANNELS = list(shapes.DEFAULT_CHANNELS)
THREADS = default_threads()               # 1 and every core
MAX_THREADS = max(THREADS)
# Side sweeps run at 64 input channels: with the channel sweep's point at
# 64 channels (64 filters, 5x5) each covers four filter counts / kernel sizes
# while a full asv run stays short.
SIDE_CHANNELS = [64]
FILTERS = [16, 32, 128]
KERNELS = [1, 3, 7]
# Columns of the output checked against numpy before a method is timed: a
# sample keeps the check cheap next to the timing at 512 channels.
CHECK_COLUMNS = 256


def shape(channels, filters=None, kernel=None):
    """The sweep's conv shape: defaults from bnnbench.methods.shapes unless given."""
    return shapes.grid(channels=(channels,),
                       filters=(filters,) if filters else shapes.DEFAULT_FILTERS,
                       kernel=(kernel,) if kernel else shapes.DEFAULT_KERNEL)[0]


def skip_unless_runs(method, threads, natural_threads_only=False):
    """NotImplementedError (asv: skip) for combinations that do not apply;
    natural_threads_only: single-threaded methods on 1 thread only, parallel
    ones on every core only."""
    if method not in kernels.BY_NAME:
        raise NotImplementedError(f"{method} is not in this commit's registry")
    if method not in kernels.METHODS:
        raise NotImplementedError(f"{method} needs OpenMP, which this build lacks")
    parallel = kernels.BY_NAME[method].parallel
    if not parallel and threads > 1:
        raise NotImplementedError(f"{method} is single-threaded")
    if natural_threads_only and parallel and threads != MAX_THREADS:
        raise NotImplementedError(f"{method} runs on {MAX_THREADS} threads only here")


def skip_threads_without_openmp(threads):
    if threads > 1 and not kernels.BUILD["openmp"]:
        raise NotImplementedError("threads > 1 need OpenMP, which this build lacks")


@functools.lru_cache(maxsize=1)
def operands(conv_shape):
    return make_operands(conv_shape, SEED)


def check(method, a, b, out):
    """Raise unless `out` matches numpy on a sample of columns (exactly for
    xnor methods): an unchecked kernel is never timed."""
    n = b.shape[1]
    cols = np.unique(np.linspace(0, n - 1, min(n, CHECK_COLUMNS)).astype(np.intp))
    ref = GemmCheck(a, np.ascontiguousarray(b[:, cols]), seed=SEED)
    ok, err = ref.check(method, np.ascontiguousarray(out[:, cols]))
    if not ok:
        raise AssertionError(f"{method}: output differs from the numpy reference "
                             f"(max abs error {err:g}); not timing it")


@functools.lru_cache(maxsize=2)
def checked_call(method, conv_shape, threads):
    """The method's timed call on the shape's operands, after its output was
    checked. Call with BLAS already pinned to `threads`."""
    a, b = operands(conv_shape)
    run = kernels.prepare(method, a, b, threads)
    check(method, a, b, run())
    settle(method, threads)
    return run


def settle(method, threads):
    """Let OpenBLAS workers go to sleep before a multi-threaded kernel is
    timed (they spin after each call and steal the cores); see bnnbench.measure.sweep."""
    if threads > 1 and method != BASELINE:
        time.sleep(BLAS_SETTLE_S)


class PinnedBlas:
    """Mixin: BLAS pinned to the benchmark's thread count from setup to teardown."""

    _pin = None

    def pin_blas(self, threads):
        self._pin = contextlib.ExitStack()
        self._pin.enter_context(kernels.blas_threads(threads))

    def teardown(self, *params):
        # asv calls teardown after a skipped setup too.
        if self._pin is not None:
            self._pin.close()
            self._pin = None


def throughput(conv_shape, seconds):
    """G ops per second, as the sweep reports it: ops = 2*M*N*K."""
    return conv_shape.ops / seconds / 1e9 if seconds else None


def load_probe():
    """The probe module, or NotImplementedError (asv: skip) for commits that
    predate it."""
    name = "bnnbench.probe" if OLD_LAYOUT else "bnnbench.measure.probe"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise NotImplementedError("this commit has no probe")


def layer_level():
    """(layer registry module, layer shapes module, operands(shape, seed),
    check class) of the installed commit, or NotImplementedError (asv: skip)
    for commits before the layer level."""
    try:
        if OLD_LAYOUT:
            conv = importlib.import_module("bnnbench.conv")
            layer_shapes = importlib.import_module("bnnbench.conv_shapes")
            conv_sweep = importlib.import_module("bnnbench.conv_sweep")
            return conv, layer_shapes, conv_sweep.make_operands, conv_sweep.LayerReference
    except ModuleNotFoundError as exc:
        raise NotImplementedError(f"this commit has no layer level ({exc.name})")
    from bnnbench.measure.levels import layer_operands
    from bnnbench.methods import conv, layer_shapes
    from bnnbench.methods.verify import LayerCheck
    return conv, layer_shapes, layer_operands, LayerCheck
