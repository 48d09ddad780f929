"""The roofline probe: practical peaks of this host that the kernels are
judged against, measured with the kernels' own build.

- popcount_gops: xor + popcount + accumulate over L1-resident words with the
  best popcount this build has, in Gbit-op/s (2 ops per bit-MAC, like the
  sweep's 2*M*N*K). It bounds every xnor kernel: their inner loop is this
  loop plus loads and bookkeeping. The AVX2 build has several ways to count
  (the nibble lookup, scalar POPCNT, mixes of both) and which is fastest
  depends on the core, so each is timed and the fastest is the peak:
  popcount_methods[threads] holds every method's rate, popcount_winner
  [threads] the fastest's name, popcount_method its description. Other
  builds have one method.
- fma_gflops: independent float32 multiply-add chains, in GFLOP/s: the
  float ceiling that float_blas and float_gemm approach.
- copy_gbs: a large memcpy, bytes read + written per second.
- read_gbs: one pass of reads over a large buffer, bytes per second: the
  ceiling for sign + bit-pack, which reads the activations once and writes
  1/32 of that. Binarizing methods are judged against the roofline
  min(popcount_gops, read_gbs * bit-ops per byte of activations).
- pack_gbs: sign + bit-pack of a large float32 activation matrix into the
  xnor kernels' layout (bytes read + written per second).
Each is measured on 1 thread and on every core, best of a few tries: a peak
is what the machine can do, so a try slowed by a neighbour on a shared host
is discarded rather than averaged in.
"""
import functools

import numpy as np

from .. import _probe

from . import hostinfo

from ..methods import kernels

COPY_BYTES = 256 * 2**20        # well past any last-level cache
PACK_SHAPE = (8192, 8192)       # 256 MiB of float32 activations
TARGET_S = 0.15


def _rounds(run):
    """Rounds of a (work, seconds) loop that last about TARGET_S.

    Each calibration step takes the faster of two calls: the first call on
    n threads also wakes the OpenMP team, which on a busy host can take tens
    of milliseconds and would end calibration with a loop far too short to
    measure anything but that wake-up."""
    rounds = 16
    while True:
        work, seconds = min((run(rounds) for _ in range(2)), key=lambda ws: ws[1])
        if seconds >= TARGET_S / 4 or rounds > 2**40:
            break
        rounds *= 8
    return max(1, int(rounds * TARGET_S / max(seconds, 1e-9)))


def _best_rate(run, tries=5):
    """Calibrate a (work, seconds) loop to about TARGET_S; best rate of `tries`."""
    rounds = _rounds(run)
    return max(w / s for w, s in (run(rounds) for _ in range(tries)))


def _best_rates(runs, tries=5):
    """_best_rate of each of several loops ({name: run}), their tries taken
    in turns so that a slow minute on a shared host slows all of them."""
    sized = {name: _rounds(run) for name, run in runs.items()}
    best = dict.fromkeys(runs, 0.0)
    for _ in range(tries):
        for name, run in runs.items():
            work, seconds = run(sized[name])
            best[name] = max(best[name], work / seconds)
    return best


def _popcount_rates(threads):
    """Gbit-op/s of every popcount method of this build on `threads`."""
    runs = {m: functools.partial(_popcount_loop, method=m, threads=threads)
            for m in _probe.METHODS}
    return {m: 2 * rate / 1e9 for m, rate in _best_rates(runs).items()}


def _popcount_loop(rounds, method, threads):
    return _probe.popcount(rounds, threads, method)


def winner(probe, threads):
    """Name of the fastest popcount method on `threads` in `probe`, if this
    build has it (a probe from another build, or from before the methods
    were timed, names none: None, the build's default loop)."""
    table = ((probe or {}).get("popcount_methods") or {}).get(str(threads))
    if not isinstance(table, dict) or not table:
        return None
    best = max(table, key=lambda m: table[m])
    return best if best in _probe.METHODS else None


def _describe(winners):
    """popcount_method: the winning method's description, per thread count
    where they differ."""
    texts = {t: _probe.METHOD_TEXTS.get(m, m) for t, m in winners.items()}
    if len(set(texts.values())) <= 1:
        return next(iter(texts.values()), _probe.METHOD)
    return "; ".join(f"{texts[t]} on {t} thread{'' if t == '1' else 's'}"
                     for t in sorted(texts, key=int))


def _copy_gbs(threads, src, dst):
    return max(_probe.copy(dst, src, threads)[0] / _probe.copy(dst, src, threads)[1]
               for _ in range(3)) / 1e9


def _read_gbs(threads, words):
    return max(n / s for n, s, _ in (_probe.read(words, threads) for _ in range(5))) / 1e9


def _pack_gbs(threads, b, out):
    from .timing import measure
    t = measure(lambda: kernels._bitpack.pack_panels(b, out, threads), min_time=0.2, repeat=3)
    return (b.nbytes + out.nbytes) / min(t.samples_s) / 1e9


# The compute ceilings a sweep also times in the turns of every shape, and
# how long one call of each lasts. A row's share of its peak is the ratio of
# its median to its ceiling's median over the same turns: on a shared VM
# whose speed drifts from minute to minute, a peak probed once at the start
# would compare a kernel in a slow minute with the loop in a fast one
# (docs/measurements.md has the figures).
CEILINGS = {"xnor": "popcount_gops", "float": "fma_gflops"}
CEILING_CALL_S = 2e-3


def ceiling_call(kind, threads, probe):
    """(call, ops): one call of the probe loop that bounds rows of `kind`
    ("xnor" or "float") on `threads` threads, and the ops it does (2 per
    MAC, as the sweep counts them); None without that peak in the probe.
    Sized from the run's probe to last about CEILING_CALL_S, not by timing
    it here: a sweep asks for it just after its exactness checks, while
    BLAS workers may still spin, and a loop timed slow then was sized to a
    few microseconds, mostly OpenMP start-up (one run read float_blas at
    9567 % of such a ceiling)."""
    peak = ((probe or {}).get("threads", {}).get(str(threads)) or {}).get(CEILINGS.get(kind))
    if not peak:
        return None
    if kind == "xnor":
        # the loop that won the probe: the ceiling is the fastest method
        loop = functools.partial(_probe.popcount, method=winner(probe, threads))
    else:
        loop = _probe.fma
    per_round = 2 * loop(1, threads)[0]
    rounds = max(1, int(CEILING_CALL_S * peak * 1e9 / per_round))
    return (lambda: loop(rounds, threads)), rounds * per_round


@functools.lru_cache(maxsize=4)
def _run_probe(threads):
    src = np.random.default_rng(0).integers(0, 255, COPY_BYTES, dtype=np.uint8)
    dst = np.empty_like(src)
    b = np.random.default_rng(1).standard_normal(PACK_SHAPE, dtype=np.float32)
    out = kernels.pack_panels(b, 64, 1)
    peaks, methods, winners = {}, {}, {}
    for t in threads:
        copy = _copy_gbs(t, src, dst)
        read = _read_gbs(t, src.view(np.uint64))
        pack = _pack_gbs(t, b, out)
        rates = _popcount_rates(t)
        best = max(rates, key=rates.get)
        methods[str(t)], winners[str(t)] = rates, best
        peaks[str(t)] = {
            "popcount_gops": rates[best],
            "fma_gflops": 2 * _best_rate(lambda r: _probe.fma(r, t)) / 1e9,
            "copy_gbs": copy,
            "read_gbs": read,
            "pack_gbs": pack,
            "pack_fraction_of_copy": pack / copy,
            "pack_fraction_of_read": pack / read,
        }
    return {"popcount_method": _describe(winners), "popcount_methods": methods,
            "popcount_winner": winners, "threads": peaks}


def run_probe(threads=None, fresh=False):
    """Peaks per thread count (keys are strings, as in JSON). fresh: measure
    again rather than return this process's earlier probe."""
    threads = tuple(threads or hostinfo.default_threads())
    if not kernels.BUILD["openmp"]:
        threads = (1,)  # without OpenMP every probe loop runs on one thread
    if fresh:
        _run_probe.cache_clear()
    return _run_probe(threads)


# Compute peaks grow with cores; a probe whose n-thread peak is below its
# 1-thread peak ran while something else held a core.
SCALING_PEAKS = ("popcount_gops", "fma_gflops")


def check(probe):
    """Why this probe cannot be a quiet host's peaks, or None."""
    per = (probe or {}).get("threads") or {}
    one = per.get("1") or {}
    for t, peaks in sorted(per.items()):
        if t == "1":
            continue
        for key in SCALING_PEAKS:
            if one.get(key) and peaks.get(key) is not None and peaks[key] < one[key]:
                return (f"{key} on {t} threads ({peaks[key]:.0f}) below 1 thread "
                        f"({one[key]:.0f})")
    return None


def best_of(a, b):
    """Per thread count and peak, the higher of two probes: a peak is what
    the machine can do, so the slowed try is the one to discard."""
    out = {"popcount_method": a.get("popcount_method"), "threads": {}}
    tables = {}
    for t in set(a.get("popcount_methods") or {}) | set(b.get("popcount_methods") or {}):
        ta = (a.get("popcount_methods") or {}).get(t) or {}
        tb = (b.get("popcount_methods") or {}).get(t) or {}
        tables[t] = {m: max(v for v in (ta.get(m), tb.get(m)) if v is not None)
                     for m in dict.fromkeys([*ta, *tb])}
    if tables:
        out["popcount_methods"] = tables
        out["popcount_winner"] = {t: max(r, key=r.get) for t, r in tables.items() if r}
        out["popcount_method"] = _describe(out["popcount_winner"])
    for t in set(a.get("threads", {})) | set(b.get("threads", {})):
        pa, pb = a["threads"].get(t, {}), b["threads"].get(t, {})
        merged = {k: max(v for v in (pa.get(k), pb.get(k)) if v is not None)
                  for k in set(pa) | set(pb)}
        for name, denom in (("copy", "copy_gbs"), ("read", "read_gbs")):
            if merged.get("pack_gbs") and merged.get(denom):
                merged[f"pack_fraction_of_{name}"] = merged["pack_gbs"] / merged[denom]
        out["threads"][t] = merged
    return out


def reprobe(probe, threads, reason):
    """Measure again, keep the best of both, and mark the result unreliable
    if `reason` (a function of the merged probe) still finds fault with it.
    Updates `probe` in place (it is the run file's host.probe)."""
    merged = best_of(probe, run_probe(threads, fresh=True))
    probe.update(merged)
    probe["reprobed"] = True
    why = reason(probe)
    probe["unreliable"] = why
    return why


def checked_probe(threads=None):
    """run_probe, re-probed once if its peaks do not scale with threads;
    still wrong after that, it says so in "unreliable"."""
    probe = dict(run_probe(threads))
    probe["threads"] = {t: dict(p) for t, p in probe["threads"].items()}
    if check(probe):
        reprobe(probe, threads, check)
    return probe


def peak_fraction(row, probe, in_turns=True, memory=True):
    """Share of this host's peak a sweep row reached (None if unknown).

    Float rows are judged against the FMA peak, xnor rows against the
    popcount peak: the row's ceiling_gops (that loop's median over the same
    turns as the row, see CEILINGS) where it has one and in_turns, else the
    run's probe. Rows that binarize their input inside the timed call
    against the roofline: they must also read K*N float32 activations (a
    whole binary layer: its feature map, the row's read_bytes), so they can
    go no faster than min(popcount peak, read bandwidth * bit-ops per byte
    read). memory=False leaves that read bound out: it is the probe's
    bandwidth from memory, which activations still in the last-level cache
    beat, so it bounds a row only in the model, not on every call, and is
    no evidence that a timing or the probe is wrong."""
    peaks = (probe or {}).get("threads", {}).get(str(row["threads"]))
    if not peaks or not row.get("gops"):
        return None
    peak = ((in_turns and row.get("ceiling_gops"))
            or peaks.get(CEILINGS.get(row["kind"], "fma_gflops")))
    method = kernels.BY_NAME.get(row.get("method"))
    # read_bytes: what a row's call must read (a whole layer's feature map).
    nbytes = row.get("read_bytes") or (
        4 * row["K"] * row["N"] if method and method.binarizes_input else None)
    if peak and nbytes and memory:
        read, ops = peaks.get("read_gbs"), row.get("ops")
        if not (read and ops and nbytes):
            return None  # a probe from before read_gbs: no fair ceiling
        peak = min(peak, read * ops / nbytes)
    return row["gops"] / peak if peak else None
