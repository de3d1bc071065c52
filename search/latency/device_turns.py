"""Turn-taking on one machine's device: latency timing runs alone, other work shares the device.

Workers of a search on one machine train while others time a latency; a timing taken while a
neighbour trains measures the neighbour. ``DeviceTurns`` gives timing an exclusive turn and work
(a training step, a compile, a validation) a shared one, with two ``flock`` files per device in
the per-user cache folder:

- work takes the *gate* shared for an instant, then the *device* lock shared while it runs;
- timing takes the gate exclusively (no new work starts), then the device lock exclusively
  (running work has finished), times, and releases both.

So a timing waits for at most the work already running, and work never starves it. Locks die
with their process, so a killed worker blocks nobody.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from space.basics.cache import cache_dir

from space.basics.filelock import flocked


def lock_folder() -> Path:
    """Where the turn files live (``<cache dir>/locks``)."""
    return cache_dir() / "locks"


class DeviceTurns:
    """Exclusive turns for timing, shared turns for work, on ``device`` (``CPU``, ``GPU:0``, ...)."""

    def __init__(self, device: str, folder: Path | None = None) -> None:
        self.folder = folder or lock_folder()
        self.name = device.replace(":", "-").replace("/", "-")
        self._handles: dict[str, IO] = {}

    @classmethod
    def on(cls, device: str, device_id: int) -> "DeviceTurns":
        """The turns of ``device`` number ``device_id`` (every CPU of a machine is one device)."""
        return cls(device_name(device, device_id))

    def _handle(self, role: str) -> IO:
        """The open file of one lock (``gate`` or ``device``) for one use (``timing`` or ``work``)."""
        if role not in self._handles:
            self.folder.mkdir(parents=True, exist_ok=True)
            kind = role.split(".")[0]
            self._handles[role] = open(self.folder / f"{self.name}.{kind}.lock", "a+")
        return self._handles[role]

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Hold the device alone: wait for running work, keep new work out."""
        with flocked(self._handle("gate.timing"), fcntl.LOCK_EX), \
                flocked(self._handle("device.timing"), fcntl.LOCK_EX):
            yield

    @contextmanager
    def work(self) -> Iterator[None]:
        """Share the device with other work; wait while a timing holds it."""
        device = self._handle("device.work")
        with flocked(self._handle("gate.work"), fcntl.LOCK_SH):
            fcntl.flock(device, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(device, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock files."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


def device_name(device: str, device_id: int) -> str:
    """The name turns are taken on: ``CPU`` (one per machine) or ``GPU:1``, ``Ascend:0``."""
    return device if device == "CPU" else f"{device}:{device_id}"
