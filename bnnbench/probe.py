"""The roofline probe: practical peaks of this host that the kernels are
judged against, measured with the kernels' own build.

- popcount_gops: xor + popcount + accumulate over L1-resident words with the
  best popcount this build has, in Gbit-op/s (2 ops per bit-MAC, like the
  sweep's 2*M*N*K). It bounds every xnor kernel: their inner loop is this
  loop plus loads and bookkeeping.
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

from . import _probe, hostinfo, kernels

COPY_BYTES = 256 * 2**20        # well past any last-level cache
PACK_SHAPE = (8192, 8192)       # 256 MiB of float32 activations
TARGET_S = 0.15


def _best_rate(run, tries=5):
    """Calibrate a (work, seconds) loop to about TARGET_S; best rate of `tries`."""
    rounds = 16
    while True:
        work, seconds = run(rounds)
        if seconds >= TARGET_S / 4 or rounds > 2**40:
            break
        rounds *= 8
    rounds = max(1, int(rounds * TARGET_S / max(seconds, 1e-9)))
    return max(w / s for w, s in (run(rounds) for _ in range(tries)))


def _copy_gbs(threads, src, dst):
    return max(_probe.copy(dst, src, threads)[0] / _probe.copy(dst, src, threads)[1]
               for _ in range(3)) / 1e9


def _read_gbs(threads, words):
    return max(n / s for n, s, _ in (_probe.read(words, threads) for _ in range(5))) / 1e9


def _pack_gbs(threads, b, out):
    from .timing import measure
    t = measure(lambda: kernels._bitpack.pack_panels(b, out, threads), min_time=0.2, repeat=3)
    return (b.nbytes + out.nbytes) / min(t.samples_s) / 1e9


@functools.lru_cache(maxsize=4)
def _run_probe(threads):
    src = np.random.default_rng(0).integers(0, 255, COPY_BYTES, dtype=np.uint8)
    dst = np.empty_like(src)
    b = np.random.default_rng(1).standard_normal(PACK_SHAPE, dtype=np.float32)
    out = kernels.pack_panels(b, 64, 1)
    peaks = {}
    for t in threads:
        copy = _copy_gbs(t, src, dst)
        read = _read_gbs(t, src.view(np.uint64))
        pack = _pack_gbs(t, b, out)
        peaks[str(t)] = {
            "popcount_gops": 2 * _best_rate(lambda r: _probe.popcount(r, t)) / 1e9,
            "fma_gflops": 2 * _best_rate(lambda r: _probe.fma(r, t)) / 1e9,
            "copy_gbs": copy,
            "read_gbs": read,
            "pack_gbs": pack,
            "pack_fraction_of_copy": pack / copy,
            "pack_fraction_of_read": pack / read,
        }
    return {"popcount_method": _probe.METHOD, "threads": peaks}


def run_probe(threads=None):
    """Peaks per thread count (keys are strings, as in JSON)."""
    threads = tuple(threads or hostinfo.default_threads())
    if not kernels.BUILD["openmp"]:
        threads = (1,)  # without OpenMP every probe loop runs on one thread
    return _run_probe(threads)


def peak_fraction(row, probe):
    """Share of this host's peak a sweep row reached (None if unknown).

    Float rows are judged against the FMA peak, xnor rows against the
    popcount peak; rows that binarize their input inside the timed call
    against the roofline: they must also read K*N float32 activations, so
    they can go no faster than min(popcount peak, read bandwidth * bit-ops
    per byte read)."""
    peaks = (probe or {}).get("threads", {}).get(str(row["threads"]))
    if not peaks or not row.get("gops"):
        return None
    peak = peaks.get("popcount_gops" if row["kind"] == "xnor" else "fma_gflops")
    method = kernels.BY_NAME.get(row.get("method"))
    if peak and method and method.binarizes_input:
        read, ops, nbytes = peaks.get("read_gbs"), row.get("ops"), 4 * row["K"] * row["N"]
        if not (read and ops and nbytes):
            return None  # a probe from before read_gbs: no fair ceiling
        peak = min(peak, read * ops / nbytes)
    return row["gops"] / peak if peak else None
