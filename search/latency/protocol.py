"""The measurement protocol shared by every backend: warm up, time each run between syncs, summarize."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

from space.errors import UsageError

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 50
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


def summarize(times_ms: list[float], env: dict) -> LatencyResult:
    """Median, p90, min, mean and coefficient of variation (std/mean) of run times."""
    ordered = sorted(times_ms)
    mean = sum(ordered) / len(ordered)
    std = math.sqrt(sum((t - mean) ** 2 for t in ordered) / len(ordered))
    return LatencyResult(median_ms=percentile(ordered, 50), p90_ms=percentile(ordered, 90),
                         min_ms=ordered[0], mean_ms=mean, cv=std / mean if mean > 0 else 0.0,
                         repeats=len(ordered), env=env)


def time_runs(runner: Runner, warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS,
              env: dict | None = None) -> LatencyResult:
    """Run ``warmup`` untimed inferences, then time ``repeats`` with the device synchronized around each."""
    check_protocol(warmup, repeats)
    for _ in range(warmup):
        runner.run()
    runner.synchronize()
    times_ms = []
    for _ in range(repeats):
        runner.synchronize()
        start = time.perf_counter()
        runner.run()
        runner.synchronize()
        times_ms.append((time.perf_counter() - start) * 1e3)
    return summarize(times_ms, dict(env or {}, warmup=warmup))
