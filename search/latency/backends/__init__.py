"""Backends: turn a MindSpore cell and an input shape into a Runner on the target device."""

from __future__ import annotations

from pathlib import Path

from ..protocol import Runner
from ..target import LatencyTarget


def configure_process(target: LatencyTarget) -> None:
    """Process-wide setup the backend needs before any network is built or run (MindSpore binds a
    process to its device and thread count when it first executes a kernel)."""
    if target.backend in ("mindspore", "mindir"):
        from .mindspore_graph import configure_mindspore
        configure_mindspore(target)


def prepare_runner(cell, input_shape: tuple[int, ...], target: LatencyTarget, workdir: Path) -> Runner:
    """A Runner for ``cell`` (in inference mode) fed a fixed random input of ``input_shape``.

    ``workdir`` holds exported model files (ONNX, MindIR) while the runner lives.
    """
    if target.backend == "onnxruntime":
        from .onnx_runtime import onnx_runner
        return onnx_runner(cell, input_shape, target, workdir)
    if target.backend == "mindir":
        from .mindir import export_mindir, mindir_runner
        return mindir_runner(export_mindir(cell, input_shape, workdir / "model"), input_shape, target)
    from .mindspore_graph import graph_runner
    return graph_runner(cell, input_shape, target)
