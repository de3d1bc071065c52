"""ONNX Runtime: export a cell with MindSpore's ONNX exporter and run it with a fixed thread count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from space.basics.errors import UsageError

from ..target import ORT_PROVIDERS, LatencyTarget
from .mindspore_graph import random_input


def export_onnx(cell, input_shape: tuple[int, ...], file_stem: Path) -> Path:
    """Write ``cell`` (inference mode, fixed input shape) to ``file_stem.onnx``; returns the path."""
    import mindspore as ms
    from mindspore.onnx import export
    cell.set_train(False)
    export(cell, ms.Tensor(np.zeros(input_shape, np.float32)), file_name=str(file_stem))
    return Path(f"{file_stem}.onnx")


def session_options(threads: int):
    """Sequential execution, full graph optimization, ``threads`` intra-op threads."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


class OrtRunner:
    """An ONNX Runtime session with its input bound; ``run`` returns only once outputs are on the host.

    On the CPU all of its work runs on its ``threads`` intra-op threads (``host_threads``). A
    session on which the target's provider is not active (ONNX Runtime fell back to the CPU) is a
    UsageError; ``env`` records the active providers.
    """

    def __init__(self, path: Path, input_shape: tuple[int, ...], target: LatencyTarget) -> None:
        import onnxruntime as ort
        provider = ORT_PROVIDERS[target.device]
        provider_options = {} if target.device == "CPU" else {"device_id": target.device_id}
        self.session = ort.InferenceSession(str(path), session_options(target.thread_count),
                                            providers=[(provider, provider_options)])
        active = self.session.get_providers()
        if provider not in active:
            raise UsageError(f"ONNX Runtime provider {provider} (device {target.device}:{target.device_id}) "
                             f"is not active in the session - active: {', '.join(active)}")
        self.env = {"ort_providers": active}
        self.feed = {self.session.get_inputs()[0].name: random_input(input_shape)}
        self.host_threads = target.thread_count if target.device == "CPU" else None

    def run(self) -> None:
        """One inference."""
        self.session.run(None, self.feed)

    def synchronize(self) -> None:
        """Nothing to wait for: ``InferenceSession.run`` is blocking."""


def onnx_runner(cell, input_shape: tuple[int, ...], target: LatencyTarget, workdir: Path) -> OrtRunner:
    """Export ``cell`` to ONNX under ``workdir`` and open it in ONNX Runtime."""
    return OrtRunner(export_onnx(cell, input_shape, workdir / "model"), input_shape, target)
