import itertools

import pytest

from bnnbench.measure.timing import MIN_SAMPLE_S, measure, measure_interleaved


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


def test_interleaved_takes_turns_and_meets_both_minimums():
    clock = FakeClock([0.0])  # the functions below move the clock themselves
    calls = []

    def make(name, seconds):
        def fn():
            calls.append(name)
            clock.now += seconds
        return fn

    turns = []
    fast, slow = measure_interleaved([make("fast", 0.01), make("slow", 0.25)], min_time=1.0,
                                     repeat=3, rounds=4, before=turns.append, clock=clock)
    # calibration turn of each, then 4 rounds of one turn each, in order
    assert turns == [0, 1] + [0, 1] * 4
    # each round: at least ceil(3 / 4) = 1 sample and 1.0 / 4 s of them
    assert len(slow.samples_s) == 4
    assert len(fast.samples_s) == 4 * 25
    assert sum(fast.samples_s) == pytest.approx(1.0)
    # the turns alternate: both functions run in the first and last quarter
    assert {"fast", "slow"} <= set(calls[:30]) and {"fast", "slow"} <= set(calls[-30:])


def test_bad_arguments():
    with pytest.raises(ValueError):
        measure(lambda: None, repeat=0)
    with pytest.raises(ValueError):
        measure_interleaved([lambda: None], rounds=0)
