"""Training: MindCV's recipe keys, ImageFolder data, the loop (standalone or msrun), validation."""

from .config import TrainConfig, load_config
from .digits import write_digits
from .loop import TrainResult, train
from .validate import evaluate

__all__ = ["TrainConfig", "TrainResult", "evaluate", "load_config", "train", "write_digits"]
