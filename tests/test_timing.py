import itertools

import pytest

from bnnbench.timing import MIN_SAMPLE_S, measure


class FakeClock:
    """Each call of fn advances time by the next duration."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = itertools.cycle(durations)

    def __call__(self):
        return self.now

    def fn(self):
        self.now += next(self.durations)


def test_statistics_of_known_samples():
    clock = FakeClock([0.01, 0.02, 0.03, 0.04, 0.05])
    t = measure(clock.fn, min_time=0, repeat=5, warmup=5, clock=clock)
    s = t.stats()
    assert t.loops == 1
    assert len(s["samples_s"]) == 5
    assert s["min_s"] == pytest.approx(0.01)
    assert s["median_s"] == pytest.approx(0.03)
    assert s["iqr_s"] == pytest.approx(0.02)
    assert s["noisy"]


def test_repeats_until_min_time():
    clock = FakeClock([0.125])  # exact in binary: 8 samples make 1 s
    t = measure(clock.fn, min_time=1.0, repeat=3, clock=clock)
    assert len(t.samples_s) == 8
    assert not t.stats()["noisy"]


def test_short_calls_are_grouped_into_loops():
    clock = FakeClock([1e-6])
    t = measure(clock.fn, min_time=0, repeat=3, clock=clock)
    assert t.loops * 1e-6 >= MIN_SAMPLE_S
    assert t.stats()["median_s"] == pytest.approx(1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError):
        measure(lambda: None, repeat=0)
