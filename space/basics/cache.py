"""The cache folder: built kernels, measured MixConv choices, bundled datasets' manifests."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MIXNAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mixnas``, else ``~/.cache/mixnas``."""
    if os.environ.get("MIXNAS_CACHE_DIR"):
        return Path(os.environ["MIXNAS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixnas"
