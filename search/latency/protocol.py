"""The measurement protocol shared by every backend: warm up, time each run between syncs, summarize.

The timed runs are split into rounds of at least ``MIN_ROUND_RUNS`` runs (at most
``DEFAULT_ROUNDS``), each started by one untimed run. Load from other processes only ever adds
time, so the statistics reported are those of the quietest round (lowest median). While the two
quietest rounds differ by more than ``STABLE_SPREAD``, more rounds of the same size are run, for
up to ``EXTRA_TIME_FACTOR`` times the duration of the first rounds but at least ``min_extra_s``
(default ``MIN_EXTRA_S``) and at most ``MAX_EXTRA_S`` seconds, so that a burst of load shorter
than that is waited out. ``min_ms`` is
over all runs and ``repeats`` counts all timed runs; the environment records the rounds, whether
the two quietest rounds agreed (``stable``) and the median of all runs (``pooled_median_ms``). On a dedicated
device the first rounds agree and the result is the plain median of ``repeats`` runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from space.errors import UsageError

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 50
DEFAULT_ROUNDS = 5
MIN_ROUND_RUNS = 10
EXTRA_TIME_FACTOR = 4.0
MIN_EXTRA_S = 5.0
MAX_EXTRA_S = 30.0
STABLE_SPREAD = 0.03
MIN_REPEATS = 2


class Runner(Protocol):
    """One compiled model on one device with its input bound."""

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


def check_protocol(warmup: int, repeats: int) -> None:
    """Raise UsageError for a negative warm-up or too few timed runs."""
    if not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"warmup {warmup!r} - must be an integer >= 0")
    if not isinstance(repeats, int) or repeats < MIN_REPEATS:
        raise UsageError(f"repeats {repeats!r} - must be an integer >= {MIN_REPEATS}")


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


def time_runs(runner: Runner, warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS,
              env: dict | None = None, min_extra_s: float = MIN_EXTRA_S) -> LatencyResult:
    """Run ``warmup`` untimed inferences, then time ``repeats`` in rounds, synchronized around each.

    ``min_extra_s`` is the least time spent waiting for two quiet rounds to agree (see above).
    """
    check_protocol(warmup, repeats)
    for _ in range(warmup):
        runner.run()
    sizes = round_sizes(repeats)
    rounds_ms: list[list[float]] = []
    start = time.perf_counter()
    for size in sizes:
        runner.run()
        rounds_ms.append([timed_run(runner) for _ in range(size)])
    patience = min(MAX_EXTRA_S, max(min_extra_s, EXTRA_TIME_FACTOR * (time.perf_counter() - start)))
    deadline = time.perf_counter() + patience
    while len(sizes) > 1 and not stable(rounds_ms) and time.perf_counter() < deadline:
        runner.run()
        rounds_ms.append([timed_run(runner) for _ in range(sizes[-1])])
    return summarize(rounds_ms, dict(env or {}, warmup=warmup))


def quietest(results: list[LatencyResult]) -> LatencyResult:
    """Of measurements of one model taken at different times (passes), the one with the lowest median."""
    best = min(results, key=lambda r: r.median_ms)
    if len(results) == 1:
        return best
    return replace(best, env=dict(best.env, passes=len(results),
                                  pass_medians_ms=[round(r.median_ms, 6) for r in results]))
