"""``measure_latency``: one genome end to end on a target, through the cache when one is given."""

from __future__ import annotations

import tempfile
from pathlib import Path

from space.errors import UsageError
from space.genome import Genome

from .backends import prepare_runner
from .cache import LatencyCache
from .environment import env_key, environment
from .protocol import DEFAULT_REPEATS, DEFAULT_WARMUP, LatencyResult, check_protocol, time_runs
from .target import LatencyTarget, check_available, validate_target


def measure_cell(cell, input_shape: tuple[int, ...], target: LatencyTarget, warmup: int, repeats: int,
                 env: dict) -> LatencyResult:
    """Time a MindSpore cell fed ``input_shape`` on the target with the shared protocol."""
    with tempfile.TemporaryDirectory(prefix="mixnas-latency-") as workdir:
        runner = prepare_runner(cell, input_shape, target, Path(workdir))
        return time_runs(runner, warmup, repeats, env)


def imported_result(genome: Genome, target: LatencyTarget, cache: LatencyCache | None,
                    absent: UsageError) -> LatencyResult:
    """A result imported from a device host for a device this host lacks, else the absence error."""
    hit = cache.get(genome, target) if cache is not None else None
    if hit is not None:
        return hit
    raise UsageError(f"{absent}; for offline measurement run 'search.py mindir export', measure the "
                     "manifest on the device host with 'search.py mindir measure', then 'search.py "
                     "mindir import' the results into the cache") from None


def measure_latency(genome: Genome, target: LatencyTarget, warmup: int = DEFAULT_WARMUP,
                    repeats: int = DEFAULT_REPEATS, cache: LatencyCache | None = None) -> LatencyResult:
    """Latency of ``genome`` (as given, its classes included) at the target's batch and resolution.

    A cached result with at least ``repeats`` runs on the same target and environment is returned
    without touching the device. With the ``mindir`` backend and a device absent from this host,
    results imported from a device host are used.
    """
    validate_target(target)
    check_protocol(warmup, repeats)
    try:
        check_available(target)
    except UsageError as absent:
        if target.backend != "mindir":
            raise
        return imported_result(genome, target, cache, absent)
    env = dict(environment(target), genome_key=genome.key())
    if cache is not None:
        hit = cache.get(genome, target, env_key(env), min_repeats=repeats)
        if hit is not None:
            return hit
    from mixnet import create_model
    net = create_model(genome)
    net.set_train(False)
    result = measure_cell(net, target.input_shape, target, warmup, repeats, env)
    if cache is not None:
        cache.put(genome, result)
    return result
