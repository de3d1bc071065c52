"""A weight-sharing supernet over a search space's kernel-size groups and expansion ratios.

``Supernet`` and ``extract`` import MindSpore on first use, so that a config naming the supernet's
choices is checked without it.
"""

from __future__ import annotations

from typing import Any

from .choices import LayerChoice, SuperLayer, SupernetSpec

__all__ = ["LayerChoice", "SuperLayer", "Supernet", "SupernetSpec", "extract"]


def __getattr__(name: str) -> Any:
    """``Supernet`` and ``extract``, imported on first access."""
    if name == "Supernet":
        from .network import Supernet
        return Supernet
    if name == "extract":
        from .extraction import extract
        return extract
    raise AttributeError(f"module 'mixnet.supernet' has no attribute '{name}'")
