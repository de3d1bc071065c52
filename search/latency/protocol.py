"""The measurement protocol shared by every backend: warm up, time each run between syncs, summarize.

The timed runs are split into rounds of at least ``MIN_ROUND_RUNS`` runs (at most
``DEFAULT_ROUNDS``), each started by one untimed run. Load from other processes, and a slow spell
of the host, only ever add time, so the statistics reported are those of the quietest round
(lowest median). Rounds of the same size go on until the rounds span at least ``min_span_s``
seconds (default ``MIN_SPAN_S``), so that a slow spell shorter than that cannot set every round;
then, while the two quietest rounds differ by more than ``STABLE_SPREAD``, for up to
``EXTRA_TIME_FACTOR`` times longer than the planned rounds took, and never past ``MAX_SPAN_S``.
When the runner computes on a known number of host threads (``host_threads``), the rounds rotate
over disjoint groups of that many CPUs (see ``host_cpus``); where the process may not pin its
threads, the rounds do not rotate and the environment says why (``cpu_pinning``). ``min_ms`` is
over all runs and ``repeats`` counts all timed runs; the environment records the rounds, whether
the two quietest rounds agreed (``stable``), the median of all runs (``pooled_median_ms``), the
seconds the rounds spanned and what the runner adds (its ``env``). On a dedicated device the
rounds agree and the median is that of any round.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from space.basics.errors import UsageError

from .host_cpus import affinity_restored, cpu_groups, pin, pinning_refused

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 50
DEFAULT_ROUNDS = 5
MIN_ROUND_RUNS = 10
EXTRA_TIME_FACTOR = 4.0
MIN_SPAN_S = 5.0
MAX_SPAN_S = 30.0
STABLE_SPREAD = 0.03
MIN_REPEATS = 2


class Runner(Protocol):
    """One compiled model on one device with its input bound.

    ``host_threads`` is the number of host threads that do all of its work, or None when the
    backend schedules threads of its own (then the timed rounds are not moved between CPUs).
    ``env`` (optional) holds what the runner found out about where it runs, added to the
    environment of its results.
    """

    host_threads: int | None
    env: dict

    def run(self) -> None:
        """Launch one inference."""

    def synchronize(self) -> None:
        """Block until all work launched on the device has finished."""


@dataclass(frozen=True)
class LatencyResult:
    """Summary of ``repeats`` timed runs (milliseconds), the environment, and whether it came from a cache."""

    median_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    cv: float
    repeats: int
    env: dict = field(default_factory=dict)
    cached: bool = False

    def to_dict(self) -> dict:
        """A JSON-ready dict: the statistics, ``cached``, and the environment under ``env``."""
        return asdict(self)


@dataclass(frozen=True)
class TimingProtocol:
    """How latencies are timed: untimed warm-up runs, timed runs, and the least span of the rounds
    in seconds; checked when made."""

    warmup: int = DEFAULT_WARMUP
    repeats: int = DEFAULT_REPEATS
    min_span_s: float = MIN_SPAN_S

    def __post_init__(self) -> None:
        """Raise UsageError for a value outside the protocol's ranges."""
        check_protocol(self.warmup, self.repeats, self.min_span_s)


def check_protocol(warmup: int, repeats: int, min_span_s: float = MIN_SPAN_S) -> None:
    """Raise UsageError for a negative warm-up, too few timed runs or a span outside 0..MAX_SPAN_S."""
    if not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"warmup {warmup!r} - must be an integer >= 0")
    if not isinstance(repeats, int) or repeats < MIN_REPEATS:
        raise UsageError(f"repeats {repeats!r} - must be an integer >= {MIN_REPEATS}")
    if (not isinstance(min_span_s, (int, float)) or isinstance(min_span_s, bool)
            or not 0 <= min_span_s <= MAX_SPAN_S):
        raise UsageError(f"min_span_s {min_span_s!r} - must be a number of seconds from 0 to {MAX_SPAN_S:g}")


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0..100) of an ascending list."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def round_sizes(repeats: int, rounds: int = DEFAULT_ROUNDS) -> list[int]:
    """How many timed runs each round gets: as many rounds as allow MIN_ROUND_RUNS each, at most ``rounds``."""
    count = max(1, min(rounds, repeats // MIN_ROUND_RUNS))
    return [repeats // count + (1 if i < repeats % count else 0) for i in range(count)]


def stable(rounds_ms: list[list[float]]) -> bool:
    """True with one round, or when the two lowest round medians differ by at most STABLE_SPREAD."""
    if len(rounds_ms) < 2:
        return True
    low, second = sorted(percentile(sorted(r), 50) for r in rounds_ms)[:2]
    return second <= low * (1 + STABLE_SPREAD)


def summarize(rounds_ms: list[list[float]], env: dict) -> LatencyResult:
    """Statistics of the quietest round (median, p90, mean, CV = std/mean), min over all runs."""
    pooled = sorted(t for r in rounds_ms for t in r)
    quiet = min((sorted(r) for r in rounds_ms), key=lambda r: percentile(r, 50))
    mean = sum(quiet) / len(quiet)
    std = math.sqrt(sum((t - mean) ** 2 for t in quiet) / len(quiet))
    return LatencyResult(median_ms=percentile(quiet, 50), p90_ms=percentile(quiet, 90), min_ms=pooled[0],
                         mean_ms=mean, cv=std / mean if mean > 0 else 0.0, repeats=len(pooled),
                         env=dict(env, rounds=len(rounds_ms), stable=stable(rounds_ms),
                                  pooled_median_ms=percentile(pooled, 50)))


def timed_run(runner: Runner) -> float:
    """One inference between two device synchronizations, in ms."""
    runner.synchronize()
    start = time.perf_counter()
    runner.run()
    runner.synchronize()
    return (time.perf_counter() - start) * 1e3


def timed_round(runner: Runner, size: int, cpus: frozenset[int] | None) -> list[float]:
    """Move to ``cpus`` (when given), warm them with one untimed run, then time ``size`` runs."""
    if cpus is not None:
        pin(cpus)
    runner.run()
    return [timed_run(runner) for _ in range(size)]


def time_runs(runner: Runner, warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS,
              env: dict | None = None, min_span_s: float = MIN_SPAN_S) -> LatencyResult:
    """Run ``warmup`` untimed inferences, then time ``repeats`` or more in rounds, synchronized around each.

    The rounds span at least ``min_span_s`` seconds and rotate over groups of host CPUs (see above).
    The values are the caller's to check (:class:`TimingProtocol` does it when made).
    """
    env = dict(env or {}, **getattr(runner, "env", {}))
    groups = cpu_groups(runner.host_threads)
    refused = pinning_refused() if groups else None
    if refused:
        groups = []
        env["cpu_pinning"] = f"not permitted ({refused})"
    rounds_ms: list[list[float]] = []

    def next_round(size: int) -> None:
        """Time one more round, on the next CPU group in turn."""
        cpus = groups[len(rounds_ms) % len(groups)] if groups else None
        rounds_ms.append(timed_round(runner, size, cpus))

    with affinity_restored() if groups else nullcontext():
        if groups:
            pin(groups[0])
        for _ in range(warmup):
            runner.run()
        sizes = round_sizes(repeats)
        start = time.perf_counter()
        for size in sizes:
            next_round(size)
        planned = time.perf_counter() - start
        span_end = start + min_span_s
        patience_end = start + min(MAX_SPAN_S, max(min_span_s, (1 + EXTRA_TIME_FACTOR) * planned))
        while (time.perf_counter() < span_end
               or (not stable(rounds_ms) and time.perf_counter() < patience_end)):
            next_round(sizes[-1])
        span = time.perf_counter() - start
    return summarize(rounds_ms, dict(env, warmup=warmup, span_s=round(span, 3), cpu_groups=len(groups) or 1))


def quietest(results: list[LatencyResult]) -> LatencyResult:
    """Of measurements of one model taken at different times (passes), the one with the lowest median."""
    best = min(results, key=lambda r: r.median_ms)
    if len(results) == 1:
        return best
    return replace(best, env=dict(best.env, passes=len(results),
                                  pass_medians_ms=[round(r.median_ms, 6) for r in results]))
