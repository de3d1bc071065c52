"""MindSpore graph mode on CPU, GPU or Ascend: the process-wide setup and a runner for a cell."""

from __future__ import annotations

from typing import Callable

import numpy as np

from space.basics.errors import UsageError

from ..target import LatencyTarget

_threads_set: list[int] = []


def configure_mindspore(target: LatencyTarget) -> None:
    """Graph mode on ``target.device``/``device_id`` with ``target.thread_count`` CPU kernel threads.

    MindSpore binds a process to one device and one thread count for its lifetime, so asking
    for another one later in the same process is a UsageError.
    """
    import mindspore as ms
    from mindspore._c_expression import RuntimeConf
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        ms.set_device(target.device, target.device_id)
    except RuntimeError:
        device, device_id = ms.get_current_device()
        raise UsageError(f"this process already runs MindSpore on {device}:{device_id}; measure "
                         f"{target.device}:{target.device_id} in a new process") from None
    conf = RuntimeConf.get_instance()
    if not conf.is_op_threads_num_configured():
        ms.device_context.cpu.op_tuning.threads_num(target.thread_count)
        _threads_set.append(target.thread_count)
    elif _threads_set[:1] != [target.thread_count]:
        fixed = _threads_set[0] if _threads_set else "another value"
        raise UsageError(f"threads {target.thread_count} - MindSpore's CPU thread count is fixed at "
                         f"{fixed} in this process; measure other thread counts in a new process")


def random_input(input_shape: tuple[int, ...]) -> np.ndarray:
    """A fixed pseudo-random float32 input (seed 0) of the given shape."""
    return np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32)


class GraphRunner:
    """A MindSpore cell (a network or a loaded MindIR GraphCell) and its bound input tensor.

    On GPU and Ascend ``synchronize`` waits for every stream of the device; on the CPU, where
    MindSpore has no stream API, it waits for the last output by reading it to the host.
    MindSpore schedules its own threads, so ``host_threads`` is None. ``env`` holds what the
    runner adds to the environment of its results.

    After the first call (which compiles the graph) the compiled graph is run directly: a graph-mode
    ``Cell.__call__`` walks every sub-cell on each call to set its compile phase, about 1.5 ms a call
    for MixNet-S on the CPU (bench/inference_vs_ort.py). The graph stays the cell's own, freed with it
    (an ``ms.jit`` function around the cell saved as much but kept ~40 MB per runner for good).
    """

    host_threads = None

    def __init__(self, cell, input_shape: tuple[int, ...], device: str, env: dict | None = None) -> None:
        import mindspore as ms
        self.cell = cell
        self.call = None
        self.env = dict(env or {})
        self.inputs = ms.Tensor(random_input(input_shape))
        self.output = None
        self.on_cpu = device == "CPU"
        self.synchronize_streams = ms.runtime.synchronize

    def run(self) -> None:
        """Launch one inference."""
        if self.call is None:
            self.output = self.cell(self.inputs)
            self.call = compiled_call(self.cell)
        else:
            self.output = self.call(self.inputs)

    def synchronize(self) -> None:
        """Block until the device has finished everything launched so far."""
        if not self.on_cpu:
            self.synchronize_streams()
        elif self.output is not None:
            first = self.output[0] if isinstance(self.output, (tuple, list)) else self.output
            first.asnumpy()


def compiled_call(cell) -> Callable:
    """A function running ``cell``'s graph, compiled by a first ``cell(inputs)``, on new inputs of the same
    shape without ``Cell.__call__``'s walk over the sub-cells; the cell itself when this MindSpore has no
    graph executor to call directly."""
    try:
        from mindspore.graph.api import _cell_graph_executor
    except ImportError:
        return cell
    phase = cell.phase

    def call(inputs):
        return _cell_graph_executor(cell, inputs, phase=phase)
    return call


def use_kernel_threads(threads: int) -> dict:
    """Run the C++ MixConv kernels on ``threads`` threads when this process has them loaded.

    Returns the environment fields that record it (``kernel_threads``, as the kernels report it).
    Like MindSpore's CPU thread count, the setting holds for the rest of the process.
    """
    from mixnet.kernels.threads import kernel_threads, kernels_built, set_kernel_threads
    if not kernels_built():
        return {}
    set_kernel_threads(threads)
    return {"kernel_threads": kernel_threads()}


def graph_runner(cell, input_shape: tuple[int, ...], target: LatencyTarget) -> GraphRunner:
    """A runner for ``cell`` in graph mode on the target device (compiled on first run).

    On the CPU the C++ kernels of a ``kernels`` network run on the target's thread count.
    """
    configure_mindspore(target)
    cell.set_train(False)
    env = use_kernel_threads(target.thread_count) if target.device == "CPU" else {}
    return GraphRunner(cell, input_shape, target.device, env)
