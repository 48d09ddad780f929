"""The sweep: shapes x thread counts x methods -> verified, timed rows.

For each shape the operands are made once (seeded), each method is prepared
(weights packed), its output checked against the reference, and only then
timed, the methods of one shape and thread count in turns. Rows go to the
RunWriter as soon as their group is timed, so an interrupted sweep keeps
every finished group.
"""
import time
from itertools import groupby

import numpy as np
import psutil

from . import kernels
from .errors import BnnbenchError
from .probe import peak_fraction
from .timing import measure_interleaved
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


def _group_rows(shape, threads, names, a, b, ref, progress):
    """Prepare and verify each method of one (shape, threads) group; return
    its rows and the timed calls of those that passed (None for the rest)."""
    rows, runs = [], []
    for name in names:
        method = kernels.BY_NAME[name]
        if progress:
            progress.step(f"{name} threads={threads} channels={shape.channels} "
                          f"filters={shape.filters} kernel={shape.kernel}")
        run = kernels.prepare(name, a, b, threads)
        ok, err = ref.check(name, run())
        rows.append(dict(method=name, kind=method.kind, threads=threads, **shape.fields(),
                         ops=shape.ops, verified=ok, max_abs_error=err))
        runs.append(run if ok else None)
    return rows, runs


def run_steps(steps, writer, min_time, repeat, seed=0, progress=None, peaks=None):
    """Measure every step; write each row; return the rows that failed checks.

    The methods of one (shape, threads) group are checked first, then timed
    in turns (measure_interleaved), so each speedup compares samples taken
    over the same stretch of time. A group's rows are written together when
    its timing ends: an interrupt loses at most the group in progress.
    """
    failed = []
    operands = (None, None, None, None)
    for (shape, threads), group in groupby(steps, key=lambda step: step[:2]):
        names = [name for _, _, name in group]
        if operands[0] != shape:
            a, b = make_operands(shape, seed)
            operands = (shape, a, b, Reference(a, b, seed=seed))
        _, a, b, ref = operands
        with kernels.blas_threads(threads):
            rows, runs = _group_rows(shape, threads, names, a, b, ref, progress)
            timed = [i for i, run in enumerate(runs) if run]
            last = ["float_blas"]  # the checks above may just have run the BLAS

            def settle(j):
                # A kernel timed right after the BLAS would fight its
                # spinning workers (see BLAS_SETTLE_S).
                name = names[timed[j]]
                if threads > 1 and last[0] == "float_blas" and name != "float_blas":
                    time.sleep(BLAS_SETTLE_S)
                last[0] = name

            timings = measure_interleaved([runs[i] for i in timed], min_time=min_time,
                                          repeat=repeat, before=settle)
        del runs
        for i, timing in zip(timed, timings):
            rows[i].update(timing.stats())
            rows[i]["gops"] = throughput(shape, rows[i]["median_s"])
            rows[i]["peak_fraction"] = peak_fraction(rows[i], peaks)
        for row in rows:
            if not row["verified"]:
                row.update(samples_s=[], min_s=None, median_s=None, iqr_s=None, gops=None)
                failed.append(row)
            writer.add_row(row)
            if progress:
                progress.advance()
    return failed
