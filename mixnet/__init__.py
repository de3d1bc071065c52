"""MixNet in MindSpore, built from a genome."""

from .factory import apply_overrides, create_model
from .network import MixNet

__all__ = ["MixNet", "apply_overrides", "create_model"]
