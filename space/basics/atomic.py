"""Writing files so readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import UsageError

TEMPORARY_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.\w+\.tmp(\.\w+)?$")


@contextmanager
def atomic_path(path: "str | Path", suffix: str = "", folder: bool = False,
                first_wins: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` for the ``with`` block to write (a file, or a folder with
    ``folder=True``); renamed onto ``path`` when the block ends without an error, removed otherwise.

    A folder replaces the one at ``path``; with ``first_wins`` it replaces only an empty one, and a
    folder another writer put there first is kept (readers of it never see it vanish).

    The temporary name is ``.{name}.{pid}.{random}.tmp{suffix}`` (:data:`TEMPORARY_NAME`): hidden, its
    writer's process id in it, and ending in ``suffix`` for writers that choose a format by it
    (``.png``, ``.ckpt``). It gets the permissions a new file or folder gets (the umask's).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, ending = f".{path.name}.{os.getpid()}.", f".tmp{suffix}"
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=ending, dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=ending, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        tmp.chmod((0o777 if folder else 0o666) & ~_umask())
        if folder and path.is_dir():
            if not first_wins:
                shutil.rmtree(path)
            elif not any(path.iterdir()):
                path.rmdir()
        try:
            (os.rename if first_wins else os.replace)(tmp, path)
        except OSError:
            if not (first_wins and path.is_dir()):
                raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _umask() -> int:
    """The process's file-creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: "str | Path", text: str) -> None:
    """Write ``text`` to ``path`` atomically (fsynced before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def check_output(path: "str | Path") -> None:
    """Raise UsageError now, before any work, when ``path`` cannot be written (its folder is made)."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write '{path}': folder '{folder}' is not writable")
