"""History lines: speedups measured side by side, and the popcount peak.

A speedup is a ratio taken inside one process, same shape and thread count,
float_blas first and the xnor method after the OpenBLAS workers went to
sleep, as `bnnbench sweep` does it; never a ratio of two asv results.
"""
from .common import (BASELINE, THREADS, PinnedBlas, checked_call, kernels, load_probe, settle,
                     shape, skip_unless_runs, throughput, timing)

TRACK_METHODS = ["xnor_64", "xnor_64_omp"]
TRACK_CHANNELS = [64, 256, 512]
PEAK_CHANNELS = 512
# Per method and track_ call: timing.measure samples until it has
# REPEAT samples and MIN_TIME seconds of them.
MIN_TIME = 0.25
REPEAT = 5


def median_s(run):
    return timing.measure(run, min_time=MIN_TIME, repeat=REPEAT).stats()["median_s"]


class TrackSpeedup(PinnedBlas):
    """float_blas median time / method median time (> 1: the xnor kernel
    wins); xnor_64 on 1 thread, xnor_64_omp on every core."""

    params = [TRACK_METHODS, TRACK_CHANNELS, THREADS]
    param_names = ["method", "channels", "threads"]
    unit = "x float_blas"
    timeout = 600

    def setup(self, method, channels, threads):
        skip_unless_runs(method, threads, natural_threads_only=True)
        self.pin_blas(threads)
        conv = shape(channels)
        self.baseline = checked_call(BASELINE, conv, threads)
        self.candidate = checked_call(method, conv, threads)

    def track_speedup(self, method, channels, threads):
        base = median_s(self.baseline)
        settle(method, threads)
        return base / median_s(self.candidate)


class TrackPopcountFraction(PinnedBlas):
    """Share of this machine's popcount peak at the same thread count
    (the probe) that the xnor GEMM reaches at BMXNet's largest shape;
    xnor_64 on 1 thread, xnor_64_omp on every core."""

    params = [TRACK_METHODS, THREADS]
    param_names = ["method", "threads"]
    unit = "fraction of popcount peak"
    timeout = 600

    def setup(self, method, threads):
        skip_unless_runs(method, threads, natural_threads_only=True)
        self.probe = load_probe()
        # Only this thread count: the probe's other peaks cost seconds each.
        self.peaks = self.probe.run_probe((threads,))
        if str(threads) not in self.peaks.get("threads", {}):
            raise NotImplementedError(f"the probe has no peak for {threads} threads")
        self.pin_blas(threads)
        self.shape = shape(PEAK_CHANNELS)
        self.run = checked_call(method, self.shape, threads)

    def track_popcount_fraction(self, method, threads):
        settle(method, threads)
        row = {"threads": threads, "kind": kernels.BY_NAME[method].kind,
               "gops": throughput(self.shape, median_s(self.run))}
        return self.probe.peak_fraction(row, self.peaks)


class TrackPackFraction:
    """Sign + bit-pack of 256 MiB of float32 activations into the xnor layout
    (the probe's pack_gbs) as a share of this machine's read bandwidth on as
    many threads (read_gbs): how close binarizing comes to the memory limit."""

    params = [THREADS]
    param_names = ["threads"]
    unit = "fraction of read bandwidth"
    timeout = 300

    def setup(self, threads):
        # The probe runs here, where asv takes NotImplementedError as a skip.
        peaks = load_probe().run_probe((threads,))["threads"].get(str(threads))
        if peaks is None:
            raise NotImplementedError(f"the probe has no peak for {threads} threads")
        if "pack_fraction_of_read" not in peaks:
            raise NotImplementedError("this commit's probe measures no read bandwidth")
        self.fraction = peaks["pack_fraction_of_read"]

    def track_pack_fraction(self, threads):
        return self.fraction
