"""How far a speedup can be trusted: intervals, load, suspect rows, the
probe check and the run's verdict (bnnbench.measure.trust, bnnbench.measure.hostload)."""
import io
import itertools
import json

import numpy as np
import pytest

from bnnbench.measure import hostload, probe, sweep, trust
from bnnbench.progress import Progress


# ------------------------------------------------------------ the interval

@pytest.mark.parametrize("n,sigma", [(5, 0.02), (5, 0.1), (25, 0.1)])
def test_interval_covers_the_true_ratio(n, sigma):
    """Synthetic samples whose true medians are 100 and 5 (ratio 20): the
    95 % interval must hold 20 in about 95 % of trials (README: measured
    coverage). 300 trials: 90 % is more than 4 standard errors below 95 %."""
    rng = np.random.default_rng(n)
    hits = 0
    for t in range(300):
        base = 100 * np.exp(rng.normal(0, sigma, n))
        cand = 5 * np.exp(rng.normal(0, sigma, n))
        low, high = trust.ratio_interval(base, cand, seed=t)
        hits += low <= 20 <= high
    assert hits / 300 >= 0.90


def test_interval_narrows_with_samples_and_needs_two():
    rng = np.random.default_rng(0)
    few = trust.ratio_interval(rng.lognormal(0, .1, 5), rng.lognormal(0, .1, 5))
    many = trust.ratio_interval(rng.lognormal(0, .1, 400), rng.lognormal(0, .1, 400))
    assert many[1] / many[0] < few[1] / few[0]
    assert trust.ratio_interval([1.0], [1.0, 2.0]) == (None, None)
    assert trust.ratio_interval("junk", [1.0, 2.0]) == (None, None)
    # Non-positive or non-finite samples from a file are dropped, not used.
    assert trust.ratio_interval([1, 1, float("nan"), -1], [0.5, 0.5])[0] == pytest.approx(2)


# ------------------------------------------------------ one shape's rows

def _row(method, threads, ms, noisy=False, samples=None, pf=None):
    s = samples or [ms / 1e3 * f for f in (0.99, 1.0, 1.0, 1.01, 1.0)]
    return {"method": method, "threads": threads, "verified": True, "median_s": ms / 1e3,
            "samples_s": s, "noisy": noisy, "peak_fraction": pf,
            "M": 64, "N": 512, "K": 800, "channels": 32}


def test_parallel_slower_than_serial_marks_the_shape_suspect():
    rows = [_row("float_blas", 1, 0.5), _row("xnor_64_omp", 1, 0.025),
            _row("float_blas", 2, 0.25), _row("xnor_64_omp", 2, 26.0)]
    trust.annotate_shape(rows)
    assert all(r["suspect"] for r in rows)
    assert "xnor_64_omp slower on 2 threads than on 1" in rows[0]["suspect_reason"]
    assert all(r["speedup_noisy"] for r in rows)


def test_a_library_slower_on_two_threads_taints_only_those_rows():
    """OpenBLAS (or a peer engine) really is slower on 2 threads on small
    layers; that inflates the 2-thread speedups only, and says nothing about
    the host while the 1-thread rows ran."""
    rows = [_row("float_blas", 1, 2.4), _row("xnor_64_omp", 1, 0.18),
            _row("float_blas", 2, 3.9), _row("xnor_64_omp", 2, 0.095)]
    trust.annotate_shape(rows)
    assert [r["suspect"] for r in rows] == [False, False, True, True]
    assert "float_blas slower on 2 threads than on 1" in rows[3]["suspect_reason"]
    assert not trust.row_is_shaky(rows[1]) and trust.row_is_shaky(rows[3])


def test_tiny_work_may_cost_a_little_more_on_two_threads():
    rows = [_row("float_blas", 1, 0.02), _row("xnor_32_omp", 1, 0.005),
            _row("float_blas", 2, 0.021), _row("xnor_32_omp", 2, 0.009)]
    trust.annotate_shape(rows)
    assert not any(r["suspect"] for r in rows)
    assert rows[1]["speedup_low"] < 4 < rows[1]["speedup_high"]
    assert rows[1]["speedup_noisy"] is False


def test_noisy_baseline_makes_its_candidates_noisy():
    """A quiet candidate over a spread-out BLAS is no record (the 66x case)."""
    rows = [_row("float_blas", 2, 38.1, noisy=True,
                 samples=[0.02, 0.03, 0.038, 0.05, 0.06]),
            _row("xnor_32_omp", 2, 0.57)]
    trust.annotate_shape(rows)
    assert rows[1]["speedup_noisy"] is True
    assert trust.row_is_shaky(rows[1])


def test_above_peak_is_suspect():
    rows = [_row("float_blas", 1, 1.0, pf=0.8), _row("xnor_64", 1, 0.04, pf=2.65)]
    trust.annotate_shape(rows)
    assert "at 265 % of the probed peak" in rows[0]["suspect_reason"]
    # A probe known to be wrong is the run's fault to report, not the rows'.
    trust.annotate_shape(rows, peak_trusted=False)
    assert not rows[0]["suspect"]


def test_only_the_compute_ceiling_makes_a_row_suspect():
    # A binarizing row above its read roofline (activations still in cache)
    # but below the popcount loop timed beside it is a result.
    cached = dict(_row("binarize_xnor_64_omp", 1, 0.5, pf=1.3), gops=1000.0, ceiling_gops=2000.0)
    trust.annotate_shape([cached])
    assert not cached["suspect"]
    above = dict(cached, gops=2300.0)
    trust.annotate_shape([above])
    assert "at 115 % of the probed peak" in above["suspect_reason"]


def test_busy_rows_are_noisy_and_old_rows_fall_back_to_their_spread():
    rows = [_row("float_blas", 1, 1.0), _row("xnor_64", 1, 0.04)]
    trust.annotate_shape(rows, load={"other_cores": 1.0, "cpus": 2}, busy=True)
    assert rows[1]["busy"] and rows[1]["speedup_noisy"]
    assert trust.row_is_shaky({"noisy": True}) and not trust.row_is_shaky({"noisy": False})


# ------------------------------------------------------------ the verdict

def test_verdict_and_its_line():
    rows = [_row("float_blas", 1, 263.0), _row("xnor_64", 1, 10.1)]
    trust.annotate_shape(rows)
    v = trust.verdict(rows)
    assert v["headline"].startswith("xnor_64: 26")
    assert "over float_blas at 32 channels, 1 thread" in v["headline"]
    assert not v["host_busy"] and v["noisy_rows"] == 0
    line = trust.verdict_line("sweep", v)
    assert line.startswith("bnnbench sweep: xnor_64: ") and "0 of 2 rows noisy" in line
    trust.annotate_shape(rows, load={"other_cores": 0.93, "cpus": 2, "steal_share": 0,
                                     "loadavg_1m": 1.9}, busy=True)
    line = trust.verdict_line("sweep", trust.verdict(rows))
    assert "not a result: timed while the host was busy" in line
    assert "warning: host busy (other processes used 0.93 of 2 cores" in line


# ------------------------------------------------------------------- load

class _FakeMonitor(hostload.LoadMonitor):
    def __init__(self, snaps):
        self.cpus, self.snaps = 2, iter(snaps)

    def snapshot(self):
        return next(self.snaps)


def test_load_counts_other_processes_not_our_own_threads():
    m = _FakeMonitor([hostload.Snapshot(0, 0, 0, 0), hostload.Snapshot(2.0, 3.9, 0, 2.0)])
    got = m.since(m.snapshot())
    assert got["other_cores"] == pytest.approx(0.95)   # (3.9 - 2.0) CPU s over 2 s
    assert hostload.is_busy(got)
    m = _FakeMonitor([hostload.Snapshot(0, 0, 0, 0), hostload.Snapshot(2.0, 4.0, 0, 3.96)])
    assert not hostload.is_busy(m.since(m.snapshot()))


def test_wait_quiet_gives_up_and_says_so():
    busy = (hostload.Snapshot(i, 1.0 * i, 0, 0) for i in itertools.count())
    lines = []
    quiet, seen = hostload.wait_quiet(0.05, lines.append, monitor=_FakeMonitor(busy),
                                  window_s=0, sleep=lambda s: None)
    assert quiet is False and seen["other_cores"] > 0.25
    quiet, _ = hostload.wait_quiet(5, lines.append,
                               monitor=_FakeMonitor([hostload.Snapshot(0, 0, 0, 0),
                                                     hostload.Snapshot(1, 0.01, 0, 0)]),
                               window_s=0, sleep=lambda s: None)
    assert quiet is True


# -------------------------------------------------------------- the probe

def _probe(pop1, pop2, fma1=100.0, fma2=200.0):
    return {"popcount_method": "x", "threads": {
        "1": {"popcount_gops": pop1, "fma_gflops": fma1, "read_gbs": 30.0},
        "2": {"popcount_gops": pop2, "fma_gflops": fma2, "read_gbs": 33.0}}}


def test_probe_whose_peaks_do_not_scale_is_probed_again(monkeypatch):
    """The busy probe of the issue: 1840 / 1724 Gbit-op/s on 1 / 2 threads."""
    assert "popcount_gops on 2 threads (1724) below 1 thread (1840)" in \
        probe.check(_probe(1840, 1724))
    tries = iter([_probe(1840, 1724), _probe(2458, 3821)])
    monkeypatch.setattr(probe, "run_probe", lambda threads=None, fresh=False: next(tries))
    got = probe.checked_probe([1, 2])
    assert got["reprobed"] and got["unreliable"] is None
    assert got["threads"]["2"]["popcount_gops"] == 3821

    tries = iter([_probe(1840, 1724), _probe(1800, 1700)])
    monkeypatch.setattr(probe, "run_probe", lambda threads=None, fresh=False: next(tries))
    assert "below 1 thread" in probe.checked_probe([1, 2])["unreliable"]


def test_kernel_above_its_peak_reprobes_once_then_marks_the_probe(monkeypatch):
    peaks = _probe(1000, 2000)
    calls = []

    def run_probe(threads=None, fresh=False):
        calls.append(fresh)
        return _probe(1050, 2100)

    monkeypatch.setattr(probe, "run_probe", run_probe)

    class Writer:
        run = {"rows": []}
    row = dict(_row("xnor_64", 1, 1.0), kind="xnor", ops=2e12, gops=2650.0)
    sweep._check_peaks([row], Writer, peaks, Progress(1, quiet=True, stream=io.StringIO()))
    assert calls == [True]
    assert "xnor_64 ran at 252 % of the probed peak" in peaks["unreliable"]
    assert row["peak_fraction"] == pytest.approx(2650 / 1050)
    peaks["unreliable"] = None
    sweep._check_peaks([row], Writer, peaks, None)
    assert calls == [True]   # once per run: then it is marked, not probed again
    assert "xnor_64 ran at 252 % of the probed peak on 1 thread" == peaks["unreliable"]


# ------------------------------------------------------------- progress

def test_a_binarizing_row_beating_the_read_bound_does_not_reprobe(monkeypatch):
    monkeypatch.setattr(probe, "run_probe", lambda threads=None, fresh=False: pytest.fail())

    class Writer:
        run = {"rows": []}
    # 32 bit-ops per byte at 30 GB/s: a read bound of 960 Gbit-op/s, beaten.
    row = dict(_row("binarize_xnor_64_omp", 1, 1.0), kind="xnor", gops=1200.0, K=12800,
               N=12800, ops=2 * 64 * 12800 * 12800)
    peaks = _probe(2000, 4000)
    sweep._check_peaks([row], Writer, peaks, None)
    assert not peaks.get("unreliable")


def test_progress_lines_say_which_row_they_are_on():
    out = io.StringIO()
    p = Progress(3, stream=out)
    for name in ("a", "b", "c"):
        p.step(name)
    p.note("timing 3 rows")
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["1/3", "2/3", "3/3"]
    quiet = io.StringIO()
    Progress(1, quiet=True, stream=quiet).warn("host busy")
    assert quiet.getvalue() == "bnnbench: warning: host busy\n"


# ------------------------------------------- a real sweep beside a CPU hog

def test_sweep_beside_a_cpu_hog_is_marked_busy(tmp_path, sweep_beside_a_hog):
    """One busy process holds a core for the whole sweep: the run must say
    the host was busy, and every timed row must be busy, suspect or noisy."""
    out = sweep_beside_a_hog("--out", str(tmp_path), "--methods",
                             "float_blas,xnor_64,xnor_64_omp", "--format", "json", "--quiet")
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    assert run["verdict"]["host_busy"] is True
    timed = [r for r in run["rows"] if r["verified"]]
    assert timed and all(r["busy"] for r in timed)
    assert all(trust.row_is_shaky(r) for r in timed)
    assert all(r["load"]["other_cores"] >= hostload.BUSY_OTHER_CORES for r in timed)
    assert "warning: host busy" in out.stderr
    last = [line for line in out.stderr.splitlines() if line.startswith("bnnbench sweep: ")][-1]
    assert "rows noisy" in last and "warning: host busy" in last
