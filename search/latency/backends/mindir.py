"""MindIR: export a cell for offline measurement, and run a MindIR file with ``mindspore.load`` + GraphCell."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..target import LatencyTarget
from .mindspore_graph import GraphRunner, configure_mindspore


def export_mindir(cell, input_shape: tuple[int, ...], file_stem: Path) -> Path:
    """Write ``cell`` (inference mode, fixed input shape) to ``file_stem.mindir``; returns the path."""
    import mindspore as ms
    cell.set_train(False)
    ms.export(cell, ms.Tensor(np.zeros(input_shape, np.float32)), file_name=str(file_stem),
              file_format="MINDIR")
    return Path(f"{file_stem}.mindir")


def mindir_runner(path: Path, input_shape: tuple[int, ...], target: LatencyTarget) -> GraphRunner:
    """Load a MindIR file as a GraphCell on the target device."""
    import mindspore as ms
    from mindspore import nn
    configure_mindspore(target)
    return GraphRunner(nn.GraphCell(ms.load(str(path))), input_shape, target.device)
