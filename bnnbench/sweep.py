"""The sweep: shapes x thread counts x methods -> verified, timed rows.

For each shape the operands are made once (seeded), each method is prepared
(weights packed), its output checked against the reference, and only then
timed. Rows go to the RunWriter as soon as they exist, so an interrupted
sweep keeps every finished row.
"""
import time

import numpy as np
import psutil

from . import kernels
from .errors import BnnbenchError
from .probe import peak_fraction
from .timing import measure
from .verify import Reference

MEMORY_HEADROOM = 0.8   # never plan to use more than this share of free memory
# After a call, OpenBLAS workers spin for about 2**28 cycles (~0.1 s) before
# they sleep. An OpenMP kernel timed in that window fights them for the
# cores, so multi-threaded kernels are timed only after this pause.
BLAS_SETTLE_S = 0.3


def shape_bytes(shape):
    """Peak bytes a sweep step holds for one shape: operands, output,
    references and packed copies (float32 everywhere, int32 outputs)."""
    m, n, k = shape.M, shape.N, shape.K
    return 4 * (m * k + k * n) + 4 * 3 * m * n + 4 * m * k + k * n // 8 + 8 * m * 256


def check_memory(shapes):
    available = psutil.virtual_memory().available
    for shape in shapes:
        need = shape_bytes(shape)
        if need > MEMORY_HEADROOM * available:
            raise BnnbenchError(
                f"shape {shape.describe()} needs {need / 2**30:.1f} GiB but only "
                f"{available / 2**30:.1f} GiB is available; use fewer channels or a smaller batch")


def plan(shapes, methods, threads_list):
    """(shape, threads, method) steps; one-thread methods run at threads=1 only,
    and float_blas runs first at each thread count so speedups can be read."""
    order = sorted(methods, key=lambda m: (m != "float_blas", kernels.METHODS.index(m)))
    steps = []
    for shape in shapes:
        for t in threads_list:
            for name in order:
                if t == 1 or kernels.BY_NAME[name].parallel:
                    steps.append((shape, t, name))
    return steps


def throughput(shape, seconds):
    """G ops per second; ops = 2*M*N*K for both kinds, so the ratio of two
    throughputs is the speedup."""
    return shape.ops / seconds / 1e9 if seconds else None


def make_operands(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((shape.M, shape.K), dtype=np.float32)
    b = rng.standard_normal((shape.K, shape.N), dtype=np.float32)
    return a, b


def run_steps(steps, writer, min_time, repeat, seed=0, progress=None, peaks=None):
    """Measure every step; write each row; return the rows that failed checks."""
    failed = []
    current = (None, None, None)
    for shape, threads, name in steps:
        if current[0] != shape:
            current = (shape, *make_operands(shape, seed))
            ref = Reference(current[1], current[2], seed=seed)
        _, a, b = current
        method = kernels.BY_NAME[name]
        if progress:
            progress.step(f"{name} threads={threads} channels={shape.channels} "
                          f"filters={shape.filters} kernel={shape.kernel}")
        run = kernels.prepare(name, a, b, threads)
        with kernels.blas_threads(threads):
            ok, err = ref.check(name, run())
            row = dict(method=name, kind=method.kind, threads=threads, **shape.fields(),
                       ops=shape.ops, verified=ok, max_abs_error=err)
            if ok:
                if threads > 1 and name != "float_blas":
                    time.sleep(BLAS_SETTLE_S)
                row.update(measure(run, min_time=min_time, repeat=repeat).stats())
                row["gops"] = throughput(shape, row["median_s"])
                row["peak_fraction"] = peak_fraction(row, peaks)
            else:
                row.update(samples_s=[], min_s=None, median_s=None, iqr_s=None, gops=None)
                failed.append(row)
        del run
        writer.add_row(row)
        if progress:
            progress.advance()
    return failed
