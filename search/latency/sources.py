"""Latency sources of a search: genome -> milliseconds, measured here, predicted by a LUT, or served.

Each source is made once per run, when everything about it is checked (the device, the table's
space and target, the queue's database), and is handed to the workers as it is (it pickles).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from space.basics.errors import UsageError
from space.genome import Genome
from space.search_space import SearchSpace

from .cache import LatencyCache
from .lut import LatencyTable
from .measure import LatencyMeter
from .protocol import TimingProtocol
from .target import LatencyTarget, fixed_impl

LatencySource = Callable[[Genome], float]


class _Cached:
    """A source keeping results in the run's latency cache, whose file is made at the first genome
    (so a run stopped by a check writes nothing)."""

    cache_path: Path
    _cache: "LatencyCache | None" = None

    @property
    def cache(self) -> LatencyCache:
        """The latency cache, opened (and made) at first use."""
        if self._cache is None:
            self._cache = LatencyCache(self.cache_path)
        return self._cache


class MeasuredLatency(_Cached):
    """The median latency of a genome timed on the target (through the run's latency cache)."""

    def __init__(self, target: LatencyTarget, protocol: TimingProtocol, cache_path: Path) -> None:
        self.meter = LatencyMeter(target, protocol)
        self.cache_path = cache_path

    def __call__(self, genome: Genome) -> float:
        """Median latency of ``genome`` in milliseconds."""
        self.meter.cache = self.cache
        return self.meter(genome).median_ms


class TableLatency:
    """The latency of a genome predicted from a per-block table built for the search's space and target.

    The table answers for the target it was measured on only: every field of the search's target
    (backend, device, device_id, batch, resolution, threads) must be the table's, else it is a
    UsageError. A table measures one device, so another ``device_id`` (even of the same model) asks
    for a table built there. The MixConv implementation must be the table's where the backend fixes
    it (``split`` for ONNX Runtime and MindIR); on MindSpore the table's is what ``auto`` chose on the
    device it was built on, which this host is not asked to measure again.
    """

    def __init__(self, path: str, space: SearchSpace, target: LatencyTarget) -> None:
        if not Path(path).is_file():
            raise UsageError(f"latency.lut '{path}' not found - build one with 'search.py lut build', or let "
                             "'search.py run --prepare' build it")
        self.table = LatencyTable.load(path)
        try:
            self.table.ensure_matches(space, fixed_impl(target), **target.to_dict())
        except UsageError as exc:
            raise UsageError(f"latency.lut '{path}': {exc}") from None

    def __call__(self, genome: Genome) -> float:
        """Predicted latency of ``genome`` in milliseconds."""
        return self.table.predict(genome)


class RemoteLatency(_Cached):
    """The median latency of a genome measured by a ``search.py latency serve`` host through a queue
    in an SQL database; results are also kept in this host's latency cache."""

    def __init__(self, url: str, target: LatencyTarget, protocol: TimingProtocol, timeout_s: float,
                 cache_path: Path) -> None:
        self.url, self.target, self.protocol, self.timeout_s = url, target, protocol, timeout_s
        self.cache_path = cache_path
        self.queue = self._open()

    def _open(self) -> Any:
        """The request queue (opened here, so an unreachable database fails before any work)."""
        from .remote import LatencyQueue
        return LatencyQueue(self.url)

    def __getstate__(self) -> dict:
        """Everything but the open database connection, which a worker opens again."""
        return {k: v for k, v in self.__dict__.items() if k != "queue"}

    def __setstate__(self, state: dict) -> None:
        """Restore the fields and reopen the queue."""
        self.__dict__.update(state)
        self.queue = self._open()

    def __call__(self, genome: Genome) -> float:
        """Median latency of ``genome`` on the serving device, in milliseconds."""
        from tqdm import tqdm
        p = self.protocol
        result = self.queue.wait(genome, self.target, p.warmup, p.repeats, p.min_span_s, self.timeout_s,
                                 on_wait=lambda line: tqdm.write(line, file=sys.stderr))
        self.cache.put(genome, result)
        return result.median_ms


def cache_path_of(section: Any, out_dir: Path) -> Path:
    """Where a search's measured latencies are kept: the ``latency`` section's ``cache``, else in ``out_dir``."""
    return Path(section.cache or out_dir / "latency_cache.sqlite")


def latency_source(section: Any, space: SearchSpace, out_dir: Path, remote_url: str, where: str) -> LatencySource:
    """The latency source a search config's ``latency`` section names, checked now; errors name ``where``."""
    cache_path = cache_path_of(section, out_dir)
    try:
        if section.source == "lut":
            return TableLatency(section.lut, space, section.target)
        if section.source == "remote":
            return RemoteLatency(remote_url, section.target, section.protocol, section.remote_timeout_s, cache_path)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    try:
        return MeasuredLatency(section.target, section.protocol, cache_path)
    except UsageError as exc:
        raise UsageError(f"{where}: latency: {exc}") from None
