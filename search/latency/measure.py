"""``measure_latency``: genomes end to end on a target, through the cache when one is given.

Several models measured together can be timed in ``passes``: each model is timed right after it
is built, and again after all of them are, and the quietest pass (lowest median) is kept, so a
stretch of load from other processes inflates one pass of a model rather than its result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Sequence

from space.basics.errors import UsageError
from space.genome import Genome

from .backends import configure_process, prepare_runner
from .cache import LatencyCache
from .device_turns import DeviceTurns
from .environment import env_key, environment
from .protocol import (DEFAULT_REPEATS, DEFAULT_WARMUP, MIN_SPAN_S, LatencyResult, Runner, TimingProtocol,
                       quietest, time_runs)
from .target import LatencyTarget, absent_but_importable, check_available, network_impl


def prepare_cell(cell, input_shape: tuple[int, ...], target: LatencyTarget) -> Runner:
    """A runner for a MindSpore cell fed ``input_shape`` (exported files are gone once it is loaded)."""
    with tempfile.TemporaryDirectory(prefix="mixnas-latency-") as workdir:
        return prepare_runner(cell, input_shape, target, Path(workdir))


def measure_cells(builds: Sequence[Callable[[], object]], input_shapes: Sequence[tuple[int, ...]],
                  envs: Sequence[dict], target: LatencyTarget, warmup: int, repeats: int, passes: int = 1,
                  step: Callable[[], None] = lambda: None, min_span_s: float = MIN_SPAN_S) -> list[LatencyResult]:
    """Build, prepare and time each cell (``step`` after each), then time them all ``passes - 1`` more times
    (``measure_runners``)."""
    prepares = [lambda build=build, shape=shape: prepare_cell(build(), shape, target)
                for build, shape in zip(builds, input_shapes)]
    return measure_runners(prepares, envs, target, warmup, repeats, passes, step, min_span_s)


def measure_runners(prepares: Sequence[Callable[[], Runner]], envs: Sequence[dict], target: LatencyTarget,
                    warmup: int, repeats: int, passes: int = 1, step: Callable[[], None] = lambda: None,
                    min_span_s: float = MIN_SPAN_S) -> list[LatencyResult]:
    """Prepare and time each runner (``step`` after each), then time them all ``passes - 1`` more times.

    Runners are kept alive between passes only when ``passes > 1``; ``min_span_s`` is passed
    to ``time_runs``. Each timing takes an exclusive turn on the device (``DeviceTurns``), so
    search workers of this machine pause their training and exports while it runs; preparing
    (building, exporting, loading) takes a shared turn.
    """
    configure_process(target)
    turns = DeviceTurns.on(target.device, target.device_id)

    def timed(runner: Runner, env: dict) -> LatencyResult:
        """One timing of ``runner`` in an exclusive device turn."""
        with turns.timing():
            return time_runs(runner, warmup, repeats, env, min_span_s)

    runners: list[Runner | None] = []
    results: list[list[LatencyResult]] = []
    try:
        for prepare, env in zip(prepares, envs):
            with turns.work():
                runner = prepare()
            results.append([timed(runner, env)])
            runners.append(runner if passes > 1 else None)
            step()
        for _ in range(passes - 1):
            for runner, runs, env in zip(runners, results, envs):
                runs.append(timed(runner, env))
    finally:
        turns.close()
    return [quietest(runs) for runs in results]


def imported_result(genome: Genome, target: LatencyTarget, cache: LatencyCache | None,
                    absent: UsageError, repeats: int) -> LatencyResult:
    """A result with at least ``repeats`` runs imported from a device host for a device this host
    lacks, else the absence error."""
    hit = cache.get(genome, target, min_repeats=repeats) if cache is not None else None
    if hit is not None:
        return hit
    raise UsageError(f"{absent}; for offline measurement run 'search.py mindir export', measure the "
                     "manifest on the device host with 'search.py mindir measure', then 'search.py "
                     "mindir import' the results into the cache") from None


class LatencyMeter:
    """Latencies of genomes on one target under one protocol, through ``cache`` when one is given.

    Made once per run: the target's availability is checked here (``mindir`` on a device this host
    lacks is allowed: results imported from a device host answer it), never again per genome.
    """

    def __init__(self, target: LatencyTarget, protocol: TimingProtocol, cache: LatencyCache | None = None) -> None:
        self.target, self.protocol, self.cache = target, protocol, cache
        self.absent = absent_but_importable(target)

    def __call__(self, genome: Genome) -> LatencyResult:
        """Latency of ``genome`` (as given, its classes included) at the target's batch and resolution."""
        if self.absent is not None:
            return imported_result(genome, self.target, self.cache, self.absent, self.protocol.repeats)
        return self.many([genome])[0]

    def many(self, genomes: Sequence[Genome], passes: int = 1,
             step: Callable[[], None] = lambda: None) -> list[LatencyResult]:
        """Latency of each genome: cached results with at least ``repeats`` runs on the same target and
        environment (the MixConv implementation included) come without touching the device; the others
        are built with that implementation, measured in ``passes`` and stored."""
        if self.absent is not None:
            raise self.absent
        target, protocol, cache = self.target, self.protocol, self.cache
        impl = network_impl(target)
        base_env = environment(target, impl)
        found: dict[str, LatencyResult] = {}
        todo: dict[str, Genome] = {}
        for genome in genomes:
            hit = cache.get(genome, target, env_key(base_env), min_repeats=protocol.repeats) if cache else None
            if hit is not None:
                found[genome.key()] = hit
                step()
            else:
                todo.setdefault(genome.key(), genome)
        from mixnet import create_model

        def builder(genome: Genome) -> Callable[[], object]:
            """A function that builds the genome's network."""
            return lambda: create_model(genome, mixconv_impl=impl)

        measured = measure_cells([builder(g) for g in todo.values()], [target.input_shape] * len(todo),
                                 [dict(base_env, genome_key=k) for k in todo], target, protocol.warmup,
                                 protocol.repeats, passes, step, protocol.min_span_s)
        for genome, result in zip(todo.values(), measured):
            if cache is not None:
                cache.put(genome, result)
            found[genome.key()] = result
        return [found[g.key()] for g in genomes]


def measure_genomes(genomes: Sequence[Genome], target: LatencyTarget, warmup: int = DEFAULT_WARMUP,
                    repeats: int = DEFAULT_REPEATS, cache: LatencyCache | None = None, passes: int = 1,
                    step: Callable[[], None] = lambda: None, min_span_s: float = MIN_SPAN_S
                    ) -> list[LatencyResult]:
    """Latency of each genome on a target present here (see :meth:`LatencyMeter.many`)."""
    check_available(target)
    return LatencyMeter(target, TimingProtocol(warmup, repeats, min_span_s), cache).many(genomes, passes, step)


def measure_latency(genome: Genome, target: LatencyTarget, warmup: int = DEFAULT_WARMUP,
                    repeats: int = DEFAULT_REPEATS, cache: LatencyCache | None = None,
                    min_span_s: float = MIN_SPAN_S) -> LatencyResult:
    """Latency of one genome (see :class:`LatencyMeter`; ``min_span_s``: see ``time_runs``)."""
    return LatencyMeter(target, TimingProtocol(warmup, repeats, min_span_s), cache)(genome)
