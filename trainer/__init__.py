"""Training: MindCV's recipe keys, ImageFolder data, the loop (standalone or msrun), validation.

``train``, ``TrainResult`` and ``evaluate`` import MindSpore on first use, so reading a config or
writing a bundled dataset stays light.
"""

from typing import Any

from .config import TrainConfig, load_config
from .bundled import write_dataset, write_digits

__all__ = ["TrainConfig", "TrainResult", "evaluate", "load_config", "train", "write_dataset", "write_digits"]


def __getattr__(name: str) -> Any:
    """``train``/``TrainResult`` from ``trainer.loop`` and ``evaluate`` from ``trainer.validate``, on demand."""
    if name in ("train", "TrainResult"):
        from . import loop
        return getattr(loop, name)
    if name == "evaluate":
        from .validate import evaluate
        return evaluate
    raise AttributeError(f"module 'trainer' has no attribute '{name}'")
