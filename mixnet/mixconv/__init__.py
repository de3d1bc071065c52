"""MixConv implementations by name: ``implementation(name)`` is what MixNet's layers are built with.

``split`` computes with MindSpore's operators exactly as MindCV does, ``padded`` runs MixConv as
one depthwise conv over kernels zero-padded to the largest, ``kernels`` runs the C++ kernels of
``mixnet/kernels`` (CPU, float32), and ``auto`` is the fastest of them measured on the device
(``mixnet.impl_select``). ``fused`` and ``custom`` are accepted as ``padded`` and ``kernels``.
Importing this module imports no MindSpore.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from space.basics.errors import UsageError

if TYPE_CHECKING:
    from .base import Implementation

AUTO = "auto"
IMPL_NAMES = ("split", "padded", "kernels")
IMPL_CHOICES = (AUTO,) + IMPL_NAMES
IMPL_ALIASES = {"fused": "padded", "custom": "kernels"}
_CLASSES = {"split": "Split", "padded": "Padded", "kernels": "Kernels"}

__all__ = ["AUTO", "IMPL_ALIASES", "IMPL_CHOICES", "IMPL_NAMES", "canonical_name", "concrete", "implementation"]


def canonical_name(name: str) -> str:
    """``name`` with an accepted alias replaced by its implementation's name; UsageError if unknown."""
    canonical = IMPL_ALIASES.get(name, name)
    if canonical not in IMPL_CHOICES:
        aliases = ", ".join(f"{old} for {new}" for old, new in IMPL_ALIASES.items())
        raise UsageError(f"mixconv_impl '{name}' - allowed: {', '.join(IMPL_CHOICES)} (also {aliases})")
    return canonical


def concrete(name: str) -> Implementation:
    """The implementation of a name in ``IMPL_NAMES`` (no resolving, no availability check)."""
    module = importlib.import_module(f".{name}", __name__)
    return getattr(module, _CLASSES[name])()


def implementation(impl: "str | Implementation") -> Implementation:
    """The implementation ``impl`` names (``auto``: the fastest measured here), or ``impl`` itself.

    ``kernels`` raises ``KernelUnavailable`` off the CPU or when the kernels cannot be built.
    """
    if not isinstance(impl, str):
        return impl
    from ..impl_select import resolve_impl
    return concrete(resolve_impl(impl))
