"""The timing protocol itself: round sizes, the span of the rounds, rotation over host CPUs, affinity restored."""

from __future__ import annotations

import os
import time

import pytest

from search.latency import protocol
from search.latency.host_cpus import cpu_groups
from search.latency.protocol import EXTRA_TIME_FACTOR, MIN_ROUND_RUNS, round_sizes, stable, summarize, time_runs

ALLOWED = frozenset(os.sched_getaffinity(0))
two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs to rotate over")


class BusyRunner:
    """Keeps a CPU busy for a set time per run (``step_ms`` longer each run) and notes the CPUs it was allowed."""

    def __init__(self, host_threads: int | None, run_ms: float = 0.2, step_ms: float = 0.0,
                 fail_at: int | None = None) -> None:
        self.host_threads = host_threads
        self.run_ms, self.step_ms, self.fail_at = run_ms, step_ms, fail_at
        self.runs = 0
        self.cpu_sets: set[frozenset[int]] = set()

    def run(self) -> None:
        """Spin for this run's time."""
        self.runs += 1
        if self.runs == self.fail_at:
            raise RuntimeError("device lost")
        self.cpu_sets.add(frozenset(os.sched_getaffinity(0)))
        end = time.perf_counter() + (self.run_ms + self.step_ms * self.runs) / 1e3
        while time.perf_counter() < end:
            pass

    def synchronize(self) -> None:
        """Nothing to wait for."""


def test_round_sizes_split_the_timed_runs() -> None:
    assert round_sizes(50) == [10] * 5
    assert round_sizes(100) == [20] * 5
    assert round_sizes(25) == [13, 12]
    assert round_sizes(7) == [7]
    assert all(min(round_sizes(n)) >= MIN_ROUND_RUNS for n in range(20, 200))


def test_the_quietest_round_sets_the_statistics() -> None:
    rounds = [[5.0, 5.2, 5.1], [2.0, 2.2, 2.1], [2.1, 2.15, 2.2], [9.0, 9.5, 9.9]]
    result = summarize(rounds, {})
    assert result.median_ms == 2.1 and result.min_ms == 2.0 and result.repeats == 12
    assert result.env["rounds"] == 4 and result.env["stable"]
    assert not stable([[2.0], [2.5]]) and stable([[2.0], [2.05], [3.0]])


def test_cpu_groups_split_the_allowed_cpus() -> None:
    assert cpu_groups(None) == []
    assert cpu_groups(len(ALLOWED)) == []
    if len(ALLOWED) >= 2:
        groups = cpu_groups(1)
        assert groups == [frozenset({c}) for c in sorted(ALLOWED)]


class VirtualClock:
    """A ``perf_counter`` that only a ClockedRunner moves: the protocol's rules without the host's noise."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        """Seconds on the virtual clock."""
        return self.now


class ClockedRunner(BusyRunner):
    """A runner whose every run takes exactly ``run_ms + step_ms * n`` ms (n-th run) of virtual time."""

    def __init__(self, clock: VirtualClock, run_ms: float, step_ms: float = 0.0) -> None:
        super().__init__(host_threads=None, run_ms=run_ms, step_ms=step_ms)
        self.clock = clock

    def run(self) -> None:
        """Advance the clock by this run's time."""
        self.runs += 1
        self.cpu_sets.add(frozenset(os.sched_getaffinity(0)))
        self.clock.now += (self.run_ms + self.step_ms * self.runs) / 1e3


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The protocol's clock replaced by a virtual one (the protocol reads ``time.perf_counter``)."""
    virtual = VirtualClock()
    monkeypatch.setattr(protocol, "time", virtual)
    return virtual


def test_without_a_span_agreeing_rounds_time_exactly_the_runs_asked(clock: VirtualClock) -> None:
    runner = ClockedRunner(clock, run_ms=0.2)
    result = time_runs(runner, warmup=3, repeats=50, min_span_s=0.0)
    assert result.repeats == 50 and result.env["rounds"] == 5 and result.env["stable"]
    assert runner.runs == 3 + 5 * (1 + 10)  # warm-up, then each round's untimed run and its 10 timed ones
    assert result.env["cpu_groups"] == 1 and runner.cpu_sets == {ALLOWED}
    assert result.min_ms == pytest.approx(0.2) and result.median_ms == pytest.approx(0.2) and result.cv < 1e-6
    assert result.env["span_s"] == pytest.approx(55 * 0.2e-3, abs=1e-3)


def test_disagreeing_rounds_go_on_for_the_patience_and_no_longer(clock: VirtualClock) -> None:
    runner = ClockedRunner(clock, run_ms=0.5, step_ms=0.05)
    result = time_runs(runner, warmup=0, repeats=50, min_span_s=0.0)
    planned = sum(0.5 + 0.05 * n for n in range(1, 56)) / 1e3  # the five planned rounds, 11 runs each
    patience = (1 + EXTRA_TIME_FACTOR) * planned
    last_round = sum(0.5 + 0.05 * n for n in range(runner.runs - 10, runner.runs + 1)) / 1e3
    assert not result.env["stable"] and result.env["rounds"] > 5
    assert runner.runs == 11 * result.env["rounds"] and result.repeats == 10 * result.env["rounds"]
    assert patience - 1e-3 <= result.env["span_s"] <= patience + last_round + 1e-3
    # the quietest round is the first: its median is that of its 10 timed runs (runs 2..11)
    assert result.median_ms == pytest.approx(0.5 + 0.05 * 6.5) and result.min_ms == pytest.approx(0.6)


def test_the_rounds_span_at_least_the_minimum_span() -> None:
    result = time_runs(BusyRunner(host_threads=None), warmup=0, repeats=10, min_span_s=0.5)
    assert result.env["span_s"] >= 0.5
    assert result.env["rounds"] > 1 and result.repeats == 10 * result.env["rounds"]


@two_cpus
def test_rounds_rotate_over_the_cpus_and_the_affinity_comes_back() -> None:
    runner = BusyRunner(host_threads=1)
    result = time_runs(runner, warmup=2, repeats=40, min_span_s=0.2)
    assert result.env["cpu_groups"] == len(ALLOWED)
    assert runner.cpu_sets == {frozenset({c}) for c in ALLOWED}
    assert os.sched_getaffinity(0) == ALLOWED


@two_cpus
def test_the_affinity_comes_back_when_a_run_fails() -> None:
    with pytest.raises(RuntimeError, match="device lost"):
        time_runs(BusyRunner(host_threads=1, fail_at=30), warmup=2, repeats=40, min_span_s=0.0)
    assert os.sched_getaffinity(0) == ALLOWED
