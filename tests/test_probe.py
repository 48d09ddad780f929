"""The roofline probe: measured peaks exist, are positive, and rows are
judged against the peak of their own kind and thread count."""
import json
import subprocess
import sys

import numpy as np
import pytest

from bnnbench import _probe
from bnnbench.measure import probe


@pytest.fixture(scope="module")
def peaks():
    return probe.run_probe((1,))


def test_probe_measures_every_peak(peaks):
    one = peaks["threads"]["1"]
    for key in ("popcount_gops", "fma_gflops", "copy_gbs", "read_gbs", "pack_gbs"):
        assert one[key] > 0, key
    assert one["pack_fraction_of_copy"] == pytest.approx(one["pack_gbs"] / one["copy_gbs"])
    assert one["pack_fraction_of_read"] == pytest.approx(one["pack_gbs"] / one["read_gbs"])
    assert peaks["popcount_method"]


def test_the_popcount_peak_is_the_best_of_the_methods(peaks):
    table = peaks["popcount_methods"]["1"]
    assert list(table) == list(_probe.METHODS)
    assert all(rate > 0 for rate in table.values())
    best = max(table, key=table.get)
    assert peaks["threads"]["1"]["popcount_gops"] == max(table.values())
    assert peaks["popcount_winner"]["1"] == best
    assert peaks["popcount_method"] == _probe.METHOD_TEXTS[best]
    if kernels_path().startswith("avx2"):
        # AVX2: the nibble lookup, scalar POPCNT and mixes of both
        assert {"nibble", "popcnt", "mix4", "mix8"} <= set(_probe.METHODS)
    else:
        assert len(_probe.METHODS) == 1


def kernels_path():
    from bnnbench.methods import kernels
    return kernels.BUILD["kernel_path"]


@pytest.mark.parametrize("method", _probe.METHODS)
def test_each_popcount_loop_does_the_work_it_counts(method):
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**64, _probe.PROBE_WORDS, dtype=np.uint64)
    ops, total = _probe.popcount_checksum(words, 1, method)
    assert ops > 0 and ops % 64 == 0
    # Random bits: each bit-MAC the loop counts finds a set bit half the
    # time, so a loop that skipped some of its work would sum well below.
    assert 0.45 < total / ops < 0.55
    assert _probe.popcount_checksum(words, 3, method) == (3 * ops, 3 * total)
    # The sum depends on the words (the compiler cannot drop the loop).
    other = rng.integers(0, 2**64, _probe.PROBE_WORDS, dtype=np.uint64)
    assert _probe.popcount_checksum(other, 1, method)[1] != total
    # Threaded, each thread does the same loop.
    assert _probe.popcount(2, 2, method)[0] == 2 * 2 * ops


def test_an_unknown_popcount_method_is_refused():
    with pytest.raises(ValueError, match="no popcount method"):
        _probe.popcount(1, 1, "no-such-method")


def test_the_ceiling_timed_in_turns_runs_the_winning_method(monkeypatch):
    fast = _probe.METHODS[-1]
    table = {m: 100.0 for m in _probe.METHODS}
    table[fast] = 200.0
    peaks = {"popcount_methods": {"1": table},
             "threads": {"1": {"popcount_gops": 200.0, "fma_gflops": 10.0}}}
    assert probe.winner(peaks, 1) == fast
    ran = []
    real = _probe.popcount

    def spy(rounds, threads=1, method=None):
        ran.append(method)
        return real(rounds, threads, method)

    monkeypatch.setattr(probe._probe, "popcount", spy)
    call, ops = probe.ceiling_call("xnor", 1, peaks)
    call()
    assert ran and set(ran) == {fast}
    # A probe without a method table (an older run) or from another build
    # runs the default loop.
    assert probe.winner({"threads": peaks["threads"]}, 1) is None
    assert probe.winner({"popcount_methods": {"1": {"elsewhere": 5.0}}}, 1) is None


def test_best_of_merges_the_method_tables():
    a = {"popcount_method": "x", "popcount_methods": {"1": {"nibble": 900.0, "popcnt": 400.0}},
         "threads": {"1": {"popcount_gops": 900.0}}}
    b = {"popcount_method": "y", "popcount_methods": {"1": {"nibble": 800.0, "popcnt": 950.0}},
         "threads": {"1": {"popcount_gops": 950.0}}}
    merged = probe.best_of(a, b)
    assert merged["popcount_methods"]["1"] == {"nibble": 900.0, "popcnt": 950.0}
    assert merged["popcount_winner"] == {"1": "popcnt"}
    assert merged["threads"]["1"]["popcount_gops"] == 950.0


def test_peak_fraction_uses_the_row_kind_and_threads():
    peaks = {"threads": {"1": {"popcount_gops": 1000.0, "fma_gflops": 100.0},
                         "2": {"popcount_gops": 2000.0, "fma_gflops": 200.0}}}
    assert probe.peak_fraction({"kind": "xnor", "threads": 2, "gops": 500.0}, peaks) == 0.25
    assert probe.peak_fraction({"kind": "float", "threads": 1, "gops": 50.0}, peaks) == 0.5
    assert probe.peak_fraction({"kind": "float", "threads": 4, "gops": 50.0}, peaks) is None
    assert probe.peak_fraction({"kind": "xnor", "threads": 1, "gops": 5.0}, None) is None


def test_a_ceiling_timed_in_turns_replaces_the_probed_compute_peak():
    peaks = {"threads": {"1": {"popcount_gops": 1000.0, "fma_gflops": 100.0, "read_gbs": 10.0}}}
    row = {"kind": "xnor", "threads": 1, "gops": 500.0, "ceiling_gops": 800.0}
    assert probe.peak_fraction(row, peaks) == 500.0 / 800.0
    assert probe.peak_fraction(row, peaks, in_turns=False) == 0.5
    # A binarizing row's read ceiling still comes from the probe: 10 GB/s
    # at 8 bit-ops per byte read.
    binarizing = dict(row, method="binarize_xnor_64_omp", ops=32e9, K=1, N=1e9)
    assert probe.peak_fraction(binarizing, peaks) == pytest.approx(500.0 / 80.0)


def test_ceiling_call_is_the_probe_loop_sized_from_the_probe(peaks):
    for kind, key in probe.CEILINGS.items():
        call, ops = probe.ceiling_call(kind, 1, peaks)
        work, seconds = call()
        assert 2 * work == ops > 0
        # Sized from the probe's peak, not timed (a slowed try would shrink it).
        assert ops == pytest.approx(probe.CEILING_CALL_S * peaks["threads"]["1"][key] * 1e9,
                                    rel=0.05)
        assert seconds < 50 * probe.CEILING_CALL_S


def test_binarizing_rows_are_judged_against_the_memory_roofline():
    # 2*M*N*K bit-ops over 4*K*N bytes read: M/2 = 32 bit-ops per byte at M = 64.
    row = {"method": "binarize_xnor_64_omp", "kind": "xnor", "threads": 2, "gops": 480.0,
           "K": 12800, "N": 12800, "ops": 2 * 64 * 12800 * 12800}
    peaks = {"threads": {"2": {"popcount_gops": 4000.0, "read_gbs": 30.0}}}
    assert probe.peak_fraction(row, peaks) == pytest.approx(480.0 / (30.0 * 32))
    # Memory fast enough: the popcount peak binds again.
    peaks["threads"]["2"]["read_gbs"] = 1000.0
    assert probe.peak_fraction(row, peaks) == pytest.approx(480.0 / 4000.0)
    # A probe without a read bandwidth gives no fraction rather than a wrong one.
    del peaks["threads"]["2"]["read_gbs"]
    assert probe.peak_fraction(row, peaks) is None
    assert probe.peak_fraction(dict(row, method="xnor_64_omp"), peaks) == pytest.approx(0.12)


def test_host_probe_cli():
    proc = subprocess.run([sys.executable, "-m", "bnnbench", "host", "--probe", "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)
    assert host["probe"]["threads"]["1"]["popcount_gops"] > 0


def test_sweep_rows_carry_peak_fraction(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bnnbench", "sweep", "--quick", "--probe",
                           "--threads", "1", "--methods", "float_blas,xnor_64", "--format", "json",
                           "--min-time", "0", "--repeat", "1", "--quiet", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert "probe" in run["host"]
    assert all(r["peak_fraction"] > 0 for r in run["rows"])
    # Each row's share is of its own kind's loop, timed in the same turns.
    for r in run["rows"]:
        assert r["peak_fraction"] == pytest.approx(r["gops"] / r["ceiling_gops"])
