"""Where a latency is measured: backend, device, batch, resolution, threads; checks for it; and the
MixConv implementation networks measured there run."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass

from mixnet.devices import DEVICES, device_count, mindspore_devices
from space.basics.errors import UsageError

BACKENDS = ("mindspore", "onnxruntime", "mindir")
DEFAULT_THREADS = 1
EXPORT_IMPL = "split"  # the MixConv implementation exported networks are built with
ORT_PROVIDERS = {"CPU": "CPUExecutionProvider", "GPU": "CUDAExecutionProvider",
                 "Ascend": "CANNExecutionProvider"}


@dataclass(frozen=True)
class LatencyTarget:
    """The device and conditions a latency is measured under.

    ``threads=None`` means ``DEFAULT_THREADS`` (1): one intra-op thread, the most repeatable
    setting on a shared host; the thread count actually used is recorded with every result.
    """

    backend: str = "onnxruntime"
    device: str = "CPU"
    batch: int = 1
    resolution: int = 224
    device_id: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        """Raise UsageError for an unknown backend or device or an out-of-range number."""
        _validate(self)

    @property
    def thread_count(self) -> int:
        """The thread count measurements run with."""
        return DEFAULT_THREADS if self.threads is None else self.threads

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """The network input (N, C, H, W)."""
        return (self.batch, 3, self.resolution, self.resolution)

    def to_dict(self) -> dict:
        """Plain fields, with the thread count resolved."""
        return dict(asdict(self), threads=self.thread_count)


def _validate(target: LatencyTarget) -> None:
    """Raise UsageError for an unknown backend or device or an out-of-range number."""
    if target.backend not in BACKENDS:
        raise UsageError(f"unknown backend '{target.backend}' - available: {', '.join(BACKENDS)}")
    if target.device not in DEVICES:
        raise UsageError(f"unknown device '{target.device}' - available: {', '.join(DEVICES)}")
    for name, low in (("batch", 1), ("resolution", 32), ("device_id", 0), ("thread_count", 1)):
        value = getattr(target, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            label = "threads" if name == "thread_count" else name
            raise UsageError(f"{label} {value!r} - must be an integer >= {low}")


def ort_devices() -> list[str]:
    """Devices ONNX Runtime can run on here (by available execution provider)."""
    import onnxruntime as ort
    providers = set(ort.get_available_providers())
    return [d for d in DEVICES if ORT_PROVIDERS[d] in providers]


def check_available(target: LatencyTarget) -> None:
    """Raise UsageError when the backend's runtime or the device is not present on this host."""
    if target.backend == "onnxruntime":
        if importlib.util.find_spec("onnxruntime") is None:
            raise UsageError("backend 'onnxruntime' needs the onnxruntime package, which is not installed "
                             "- pip install onnxruntime, or use --backend mindspore")
        present = ort_devices()
    else:
        present = mindspore_devices()
    if target.device not in present:
        raise UsageError(f"device '{target.device}' is not present for backend '{target.backend}' on this "
                         f"host - available: {', '.join(present)}")
    if target.device != "CPU" and target.backend != "onnxruntime":
        count = device_count(target.device)
        if target.device_id >= count:
            raise UsageError(f"device_id {target.device_id} - this host has {count} {target.device} "
                             f"device(s): 0..{count - 1}")


def absent_but_importable(target: LatencyTarget) -> "UsageError | None":
    """None when ``target`` can be measured here; the absence error when only results imported from
    a device host can answer it (``mindir`` on a device this host lacks); else raise that error."""
    try:
        check_available(target)
    except UsageError as absent:
        if target.backend != "mindir":
            raise
        return absent
    return None


def check_target(target: LatencyTarget) -> None:
    """Raise UsageError for an absent device or a missing onnxruntime (a target's values are checked
    when it is made)."""
    check_available(target)


def fixed_impl(target: LatencyTarget) -> str | None:
    """The MixConv implementation ``target``'s backend fixes: ``split`` for ONNX Runtime and MindIR, whose
    exports hold standard operators only; None for MindSpore, which runs what ``auto`` picks on the device."""
    return None if target.backend == "mindspore" else EXPORT_IMPL


def network_impl(target: LatencyTarget) -> str:
    """The MixConv implementation networks measured on ``target`` run, resolved (never ``auto``).

    ``fixed_impl``, else the fastest measured on the target's device (``mixnet.impl_select``): MindSpore
    is bound to the target's device and thread count first, as a measurement binds it.
    """
    fixed = fixed_impl(target)
    if fixed is not None:
        return fixed
    from mixnet.impl_select import resolve_impl

    from .backends import configure_process
    configure_process(target)
    return resolve_impl("auto")
