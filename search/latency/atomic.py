"""Write a file so readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from space.errors import UsageError


def write_atomic(path: "str | Path", text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output(path: "str | Path") -> None:
    """Raise UsageError now, before any work, when ``path`` cannot be written (its folder is made)."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write '{path}': folder '{folder}' is not writable")
