"""Warm-up, adaptive repeats and honest statistics (after timeit/pyperf).

A measurement calls the function until it has at least `repeat` samples and
`min_time` seconds of them; measure_interleaved does so for several functions
in turns, for ratios between them. Calls shorter than MIN_SAMPLE_S are
grouped into loops per sample so that timer overhead stays negligible. Every
per-call sample is kept; min, median and IQR summarise them.
"""
import statistics
import time
from dataclasses import dataclass, field

MIN_SAMPLE_S = 1e-3
MAX_SAMPLES = 2000
NOISY_IQR_FRACTION = 0.10   # flag rows whose IQR exceeds 10 % of the median
NOISY_TEXT = f"IQR above {100 * NOISY_IQR_FRACTION:.0f} % of the median"


@dataclass
class Timing:
    samples_s: list = field(default_factory=list)  # seconds per call, one per sample
    loops: int = 1                                   # calls averaged into each sample

    def stats(self):
        s = sorted(self.samples_s)
        q1, med, q3 = _quartiles(s)
        return {
            "samples_s": self.samples_s,
            "loops": self.loops,
            "min_s": s[0],
            "median_s": med,
            "q1_s": q1,
            "q3_s": q3,
            "iqr_s": q3 - q1,
            "mean_s": statistics.fmean(s),
            "stdev_s": statistics.stdev(s) if len(s) > 1 else 0.0,
            "noisy": med > 0 and (q3 - q1) / med > NOISY_IQR_FRACTION,
        }


def _quartiles(sorted_samples):
    if len(sorted_samples) == 1:
        v = sorted_samples[0]
        return v, v, v
    q1, med, q3 = statistics.quantiles(sorted_samples, n=4, method="inclusive")
    return q1, med, q3


def _time_loops(fn, loops, clock):
    t0 = clock()
    for _ in range(loops):
        fn()
    return (clock() - t0) / loops


def _calibrate(fn, warmup, clock):
    """Loops per sample after `warmup` calls, so a sample lasts MIN_SAMPLE_S."""
    one = min(_time_loops(fn, 1, clock) for _ in range(max(1, warmup)))
    loops = 1
    while one * loops < MIN_SAMPLE_S and loops < 1_000_000:
        loops *= 2 if one * loops * 10 >= MIN_SAMPLE_S else 10
    return loops


def _sample(fn, timing, count, seconds, clock):
    """Add samples to timing until it has `count` more and `seconds` more of them."""
    spent, taken = 0.0, 0
    while (taken < count or spent < seconds) and len(timing.samples_s) < MAX_SAMPLES:
        sample = _time_loops(fn, timing.loops, clock)
        timing.samples_s.append(sample)
        spent += sample * timing.loops
        taken += 1


def _check(min_time, repeat):
    if repeat < 1 or min_time < 0:
        raise ValueError("repeat must be >= 1 and min_time >= 0")


def measure(fn, min_time=0.5, repeat=5, warmup=1, clock=time.perf_counter):
    """Time fn() after `warmup` calls; return a Timing with per-call samples."""
    _check(min_time, repeat)
    timing = Timing(loops=_calibrate(fn, warmup, clock))
    _sample(fn, timing, repeat, min_time, clock)
    return timing


def measure_interleaved(fns, min_time=0.5, repeat=5, rounds=5, warmup=1, before=None,
                        clock=time.perf_counter):
    """Time several functions in turns: `rounds` rounds, each giving every
    function its share of the samples and of min_time. On a host whose speed
    drifts (a shared VM, thermal limits) the functions then see the same
    conditions, so ratios between them carry less of the drift than when
    each is timed to the end before the next starts. before(i), if given,
    runs ahead of each turn of fns[i]. Returns one Timing per function.
    """
    _check(min_time, repeat)
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    timings = []
    for i, fn in enumerate(fns):
        if before:
            before(i)
        timings.append(Timing(loops=_calibrate(fn, warmup, clock)))
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if before:
                before(i)
            _sample(fn, timings[i], -(-repeat // rounds), min_time / rounds, clock)
    return timings
