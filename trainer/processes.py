"""Whether a process of this host still runs (for files and trials a killed process left behind)."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
