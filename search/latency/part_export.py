"""The LUT's parts exported to ONNX by several processes at once, before any of them is timed.

Exporting a part is MindSpore's graph compile, single-threaded and about three quarters of a LUT
build's time on ONNX Runtime; timing must run alone. So a build exports every part first, one
process per available CPU, then times the files one by one in its own process.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

PR_SET_PDEATHSIG = 1
MAX_EXPORTERS = 8
MIN_PARTS_PER_EXPORTER = 6
"""Below this many parts per process, starting the processes (each imports MindSpore) costs more
than it saves."""


def exporter_count(parts: int) -> int:
    """How many processes export ``parts`` parts: one per CPU this process may use (at most
    MAX_EXPORTERS), fewer when there are too few parts to share; 1 means in this process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, MAX_EXPORTERS, parts // MIN_PARTS_PER_EXPORTER))


def _die_with_parent() -> None:
    """On Linux, have this process killed when the build that started it dies: a killed build leaves
    no exporter waiting on its queue."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:   # the build died before the line above
        os._exit(1)


def _start_exporter(mode: int) -> None:
    """A worker process: tied to its build, MindSpore quiet, in the parent's execution mode, on the CPU."""
    _die_with_parent()
    from mixnet.quiet import quiet_mindspore
    quiet_mindspore()
    import mindspore as ms
    ms.set_context(mode=mode)
    ms.set_device("CPU")


@functools.lru_cache(maxsize=1)
def _parts(space_json: str, resolution: int, impl: str) -> list:
    """The LUT's parts of a space (given as its LUT document), built once per worker process."""
    from .lut import space_from_document
    from .lut_build import lut_parts
    return lut_parts(space_from_document(json.loads(space_json)), resolution, impl)


def _export_one(space_json: str, resolution: int, impl: str, index: int, shape: tuple[int, ...],
                stem: str) -> str:
    """Export part ``index`` of the space at ``shape`` to ``stem.onnx``; its path."""
    from .backends.onnx_runtime import export_onnx
    return str(export_onnx(_parts(space_json, resolution, impl)[index].build(), shape, Path(stem)))


def export_parts(space_doc: dict, resolution: int, impl: str, shapes: Sequence[tuple[int, ...]], folder: Path,
                 step: Callable[[], None] = lambda: None, workers: "int | None" = None) -> list[Path]:
    """Every part of the space (``lut_parts`` order) exported to ONNX under ``folder`` at its shape in
    ``shapes``, by ``workers`` processes (default ``exporter_count``; 1: in this process); ``step`` after
    each. The graphs are those an export in this process writes (the weights are random either way, and
    timing does not depend on them)."""
    import mindspore as ms
    space_json = json.dumps(space_doc, sort_keys=True)
    jobs = [(space_json, resolution, impl, i, tuple(shape), str(folder / f"part{i}")) for i, shape in enumerate(shapes)]
    workers = workers or exporter_count(len(jobs))
    pool = None if workers == 1 else ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_exporter,
        initargs=(ms.get_context("mode"),))
    with pool or contextlib.nullcontext():
        paths = []
        for path in (pool.map(_export_one, *zip(*jobs)) if pool else itertools.starmap(_export_one, jobs)):
            paths.append(Path(path))
            step()
    return paths
