"""Locks on files (``flock``): held by processes of this host, released if a holder dies."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle, flocked(handle, fcntl.LOCK_EX):
        yield


@contextmanager
def flocked(handle: IO, mode: int) -> Iterator[None]:
    """Hold ``flock(handle, mode)`` (``LOCK_EX`` or ``LOCK_SH``) on an open file for the ``with`` block."""
    fcntl.flock(handle, mode)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
