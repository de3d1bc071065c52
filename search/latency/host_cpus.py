"""Host CPUs for timing: the groups timed rounds rotate over, and pinning this process to one group.

On a shared or virtual host one CPU can run markedly slower than another for seconds at a time.
When a runner computes on a known number of host threads, its timed rounds move from one group of
that many CPUs to the next, so a slow spell of one CPU sets the statistics of some rounds, not all.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

TASKS = "/proc/self/task"


def cpu_groups(threads: int | None) -> list[frozenset[int]]:
    """Disjoint groups of ``threads`` CPUs this process may use, or none when they do not split in two or more."""
    if not threads or not hasattr(os, "sched_getaffinity") or not os.path.isdir(TASKS):
        return []
    allowed = sorted(os.sched_getaffinity(0))
    count = len(allowed) // threads
    if count < 2:
        return []
    return [frozenset(allowed[i * threads:(i + 1) * threads]) for i in range(count)]


def thread_ids() -> list[int]:
    """The ids of this process's threads that are alive now."""
    return [int(tid) for tid in os.listdir(TASKS)]


def pinning_refused() -> str | None:
    """Why this process may not set its threads' CPU affinity (a container may forbid it), or None.

    Probes by setting the calling thread's affinity to what it already is.
    """
    try:
        os.sched_setaffinity(0, os.sched_getaffinity(0))
    except PermissionError as exc:
        return exc.strerror or str(exc)
    return None


def set_affinity(tid: int, cpus: "set[int] | frozenset[int]") -> None:
    """Let thread ``tid`` run only on ``cpus``; a thread that has exited meanwhile is skipped."""
    try:
        os.sched_setaffinity(tid, cpus)
    except ProcessLookupError:
        pass


def pin(cpus: frozenset[int]) -> None:
    """Let every thread of this process run only on ``cpus``."""
    for tid in thread_ids():
        set_affinity(tid, cpus)


@contextmanager
def affinity_restored() -> Iterator[None]:
    """On exit, give every thread its CPU affinity from entry back (new threads get the caller's)."""
    caller = os.sched_getaffinity(0)
    before: dict[int, set[int]] = {}
    for tid in thread_ids():
        try:
            before[tid] = os.sched_getaffinity(tid)
        except ProcessLookupError:
            continue
    try:
        yield
    finally:
        for tid in thread_ids():
            set_affinity(tid, before.get(tid, caller))
