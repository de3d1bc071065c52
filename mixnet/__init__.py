"""MixNet in MindSpore, built from a genome.

``create_model``, ``apply_overrides`` and ``MixNet`` import MindSpore on first use, so that
``mixnet.quiet`` can set MindSpore's log level before MindSpore reads it at import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MixNet", "apply_overrides", "create_model"]


def __getattr__(name: str) -> Any:
    """The public names, imported on first access."""
    if name in ("apply_overrides", "create_model"):
        from . import factory
        return getattr(factory, name)
    if name == "MixNet":
        from .network import MixNet
        return MixNet
    raise AttributeError(f"module 'mixnet' has no attribute '{name}'")
