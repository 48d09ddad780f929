"""The sweep: shapes x thread counts x methods -> verified, timed rows.

For each shape the operands are made once (seeded), each method is prepared
(weights packed), its output checked against the reference, and only then
timed, all steps of one shape in turns. Rows go to the RunWriter as soon as
their shape is timed, so an interrupted sweep keeps every finished shape.
"""
import time
from dataclasses import dataclass
from itertools import groupby

from .. import limits
from ..methods import kernels
from . import hostload, probe, trust
from .probe import peak_fraction
from .levels import GEMM
from .timing import measure_interleaved

# After a call, OpenBLAS workers spin for about 2**28 cycles (~0.1 s) before
# they sleep. An OpenMP kernel timed in that window fights them for the
# cores, so multi-threaded kernels are timed only after this pause.
BLAS_SETTLE_S = 0.3


def check_memory(shapes, level=None, hint=None):
    """A one-line BnnbenchError naming the first shape that does not fit, with
    `hint` (default: the level's, in sweep flags) saying what to shrink."""
    level = level or GEMM
    for shape in shapes:
        limits.check_memory(level.shape_bytes(shape), f"shape {shape.describe()}",
                            hint or level.shrink_hint)


def plan(shapes, methods, threads_list, level=None):
    """(shape, threads, method) steps; one-thread methods run at threads=1 only,
    and the baseline runs first at each thread count so speedups can be read."""
    level = level or GEMM
    order = sorted(methods, key=lambda m: (m != level.baseline, level.methods.index(m)))
    steps = []
    for shape in shapes:
        for t in threads_list:
            for name in order:
                if t == 1 or level.by_name[name].parallel:
                    steps.append((shape, t, name))
    return steps


def throughput(shape, seconds):
    """G ops per second; ops = 2*M*N*K for both kinds, so the ratio of two
    throughputs is the speedup."""
    return shape.ops / seconds / 1e9 if seconds else None


def _check_steps(level, shape, steps, operands, ref, progress):
    """Prepare and verify each (threads, method) step of one shape; return
    its rows and the timed calls of those that passed (None for the rest)."""
    rows, runs = [], []
    for threads, name in steps:
        method = level.by_name[name]
        if progress:
            progress.step(f"{name} threads={threads} {shape.describe()}")
        run = level.prepare(name, operands, threads)
        with kernels.blas_threads(threads):
            ok, err = ref.check(name, run(), run)
        rows.append(dict(method=name, kind=method.kind, level=level.name, threads=threads,
                         **shape.fields(), ops=shape.ops, verified=ok, max_abs_error=err,
                         held_bytes=getattr(run, "held_bytes", None),
                         **level.row_fields(shape, name)))
        if getattr(run, "deployed_bytes", None) is not None:
            rows[-1]["deployed_bytes"] = run.deployed_bytes
        runs.append(run if ok else None)
    return rows, runs


@dataclass(frozen=True)
class _Call:
    """One call timed in a shape's turns: a row's own call, a named part of
    it (a float layer's im2col), one layer of a network (the per-layer
    breakdown), or the probe loop that bounds rows of a kind and thread count."""
    role: str          # "row", "part", "layer" or "ceiling"
    row: int           # index of the row it belongs to (-1 for a ceiling)
    name: str          # part or layer name, or the ceiling's kind
    fn: object
    turn: tuple        # (threads, method) the turn pins the BLAS for
    extra: object = None   # a layer's kind; a ceiling's ops per call


def _calls(level, shape_steps, runs, timed, peaks):
    calls = [_Call("row", i, "", runs[i], shape_steps[i]) for i in timed]
    for i in timed:
        # A run may name parts of itself (a float layer's im2col), stored as
        # shares of the row's time; a network names its layers.
        calls += [_Call("part", i, part, fn, shape_steps[i])
                  for part, fn in getattr(runs[i], "parts", {}).items()]
        calls += [_Call("layer", i, name, fn, shape_steps[i], kind)
                  for name, kind, fn in getattr(runs[i], "steps", ())]
    if level.roofline:
        # With a probe, the loops that bound the rows are timed in the same
        # turns too, so each row's share of its peak compares two medians
        # taken under the same host conditions (probe.CEILINGS).
        kinds = sorted({(level.by_name[shape_steps[i][1]].kind, shape_steps[i][0])
                        for i in timed})
        for kind, threads in kinds:
            call = probe.ceiling_call(kind, threads, peaks)
            if call:
                calls.append(_Call("ceiling", -1, kind, call[0], (threads, f"ceiling:{kind}"),
                                   call[1]))
    return calls


def _store(rows, calls, timings, shape):
    """Each timed call's median where it belongs: a row's statistics, its
    parts' shares, its layers' breakdown, and the ceilings of its kind."""
    ceilings = {}
    for call, timing in zip(calls, timings):
        stats = timing.stats()
        row = rows[call.row] if call.row >= 0 else None
        if call.role == "row":
            row.update(stats)
            row["gops"] = throughput(shape, row["median_s"])
        elif call.role == "part":
            row[f"{call.name}_s"] = stats["median_s"]
            row[f"{call.name}_share"] = (stats["median_s"] / row["median_s"]
                                         if row["median_s"] else None)
        elif call.role == "layer":
            row.setdefault("layers", []).append(
                {"layer": call.name, "type": call.extra, "median_s": stats["median_s"]})
        else:
            ceilings[(call.name, call.turn[0])] = call.extra / stats["median_s"] / 1e9
    for row in rows:
        layers = row.get("layers")
        if layers:
            total = sum(layer["median_s"] for layer in layers)
            outside = sum(layer["median_s"] for layer in layers if layer["type"] != "binary")
            row["outside_binary_share"] = outside / total if total else None
    return ceilings


class _Turns:
    """Set-up before each timed turn: the BLAS pinned to the turn's thread
    count and, before a kernel's turn, a pause if BLAS workers may be
    spinning: after a multi-threaded BLAS call or after a change of the
    BLAS thread count, which may wake its workers too (see BLAS_SETTLE_S)."""

    def __init__(self, steps, blas_methods=frozenset({"float_blas"})):
        self.steps = steps
        self.blas_methods = blas_methods
        self.limit = None            # (threads, threadpool limit in force)
        self.blas_may_spin = True    # the checks just ran the BLAS

    def __call__(self, i):
        threads, name = self.steps[i]
        if self.limit is None or self.limit[0] != threads:
            self.close()
            self.limit = (threads, kernels.blas_threads(threads))
            self.blas_may_spin = True  # restoring the limit passes through the default
        if name in self.blas_methods:
            self.blas_may_spin |= threads > 1
        elif self.blas_may_spin:
            time.sleep(BLAS_SETTLE_S)
            self.blas_may_spin = False

    def close(self):
        if self.limit is not None:
            self.limit[1].restore_original_limits()
            self.limit = None


def _above_peak(rows, peaks):
    """Why `rows` measured against `peaks` (the run's probe's compute peaks,
    not the ceilings timed in turns) cannot be right, or None."""
    for row in rows:
        pf = peak_fraction(row, peaks, in_turns=False, memory=False) if row.get("gops") else None
        if pf is not None and pf > trust.PEAK_TOLERANCE:
            return (f"{row['method']} ran at {100 * pf:.0f} % of the probed peak on "
                    f"{row['threads']} thread{'s' if row['threads'] != 1 else ''} "
                    f"after a re-probe")
    return None


def _check_peaks(rows, writer, peaks, progress):
    """A kernel above its probed peak means the probe read low (it ran while
    the host was busy): re-probe once, keep the best of both, and recompute
    every row's share of it. Still above, the probe is marked unreliable."""
    if not peaks or peaks.get("unreliable"):
        return
    above = _above_peak(rows, peaks)
    if not above:
        return
    if peaks.get("reprobed"):   # probed twice already: no third try
        peaks["unreliable"] = above.replace(" after a re-probe", "")
        if progress:
            progress.warn(f"the probe is unreliable: {peaks['unreliable']}")
        return
    if progress:
        progress.warn("a kernel beat the probed peak: probing again")
    threads = sorted(int(t) for t in peaks.get("threads", {}))
    every = writer.run["rows"] + rows
    why = probe.reprobe(peaks, threads, lambda p: probe.check(p) or _above_peak(every, p))
    for row in every:
        if row.get("gops"):
            row["peak_fraction"] = peak_fraction(row, peaks)
    if why and progress:
        progress.warn(f"the probe is unreliable: {why}")


def run_steps(steps, writer, min_time, repeat, seed=0, progress=None, peaks=None,
              monitor=None, level=None):
    """Measure every step; write each row; return the rows that failed checks.

    The steps of one shape (all methods, all thread counts) are checked
    first, then timed in turns (measure_interleaved), so a speedup over the
    BLAS and a 2-thread-over-1-thread ratio compare samples taken over the
    same stretch of time. The load on the host while a shape is timed is
    recorded with its rows, which trust.annotate_shape then marks busy,
    suspect or noisy. A shape's rows are written together when its timing
    ends: an interrupt loses at most the shape in progress.
    """
    level = level or GEMM
    failed = []
    monitor = monitor or hostload.LoadMonitor()
    for shape, group in groupby(steps, key=lambda step: step[0]):
        shape_steps = [(threads, name) for _, threads, name in group]
        before = monitor.snapshot()
        operands = level.make_operands(shape, seed)
        rows, runs = _check_steps(level, shape, shape_steps, operands,
                                  level.check(operands, seed), progress)
        timed = [i for i, run in enumerate(runs) if run]
        calls = _calls(level, shape_steps, runs, timed, peaks)
        turns = _Turns([call.turn for call in calls], level.blas_methods)
        if progress and timed:
            progress.note(f"timing {len(timed)} rows of {shape.describe()} in turns")
        checks_load = monitor.since(before)
        start = monitor.snapshot()
        try:
            timings = measure_interleaved([call.fn for call in calls], min_time=min_time,
                                          repeat=repeat, before=turns) if timed else []
        finally:
            turns.close()
        shape_load = monitor.since(start)
        # What ran beside the checks, just before timing: context for a reader,
        # while only the load during timing marks rows busy.
        shape_load["other_cores_before"] = checks_load["other_cores"]
        del runs
        ceiling_gops = _store(rows, calls, timings, shape)
        del calls
        if level.roofline:
            for i in timed:
                rows[i]["ceiling_gops"] = ceiling_gops.get((rows[i]["kind"], rows[i]["threads"]))
            _check_peaks([rows[i] for i in timed], writer, peaks, progress)
            for i in timed:
                rows[i]["peak_fraction"] = peak_fraction(rows[i], peaks)
        busy = hostload.is_busy(shape_load)
        trust.annotate_shape(rows, shape_load, busy,
                             peak_trusted=not (peaks or {}).get("unreliable"),
                             baseline=level.baseline, libraries=level.libraries)
        if progress and busy:
            progress.warn(f"host busy while timing {shape.describe()}: "
                          f"{hostload.describe(shape_load)}; its rows are marked busy")
        for row in rows:
            if not row["verified"]:
                row.update(samples_s=[], min_s=None, median_s=None, iqr_s=None, gops=None)
                failed.append(row)
            writer.add_row(row)
            if progress:
                progress.advance()
    return failed
