"""Choosing the MixConv implementation: ``auto`` measures the candidates once per device and remembers.

``resolve_impl("auto")`` times every implementation available on the running device (``split``,
``padded``, and ``kernels`` on a CPU with a C++ compiler) on a fixed set of probe MixNet blocks
(a training step's forward and backward, in graph mode) and returns the fastest. The choice is
kept in ``<cache dir>/mixconv_impl.json`` under a key made of the device, the MindSpore version, the
CPU, the probe shapes and the candidates it was chosen from, so later builds on the same machine pay
nothing, and a machine that gains (or loses) an implementation, say a C++ compiler installed after a
choice between ``split`` and ``padded``, measures again (a choice stored under an accepted old name
counts as its implementation). The file is written atomically (temporary file, then rename), so
concurrent processes never read a partial file.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from space.basics.atomic import write_atomic
from space.basics.cache import cache_dir
from space.genome import LayerSpec

from .blocks import MixNetBlock
from .kernels.build import KernelUnavailable, cpu_signature, library_path
from .mixconv import AUTO, IMPL_ALIASES, IMPL_NAMES, canonical_name, concrete

# Probe blocks (in, out channels, expansion, kernel sizes, 1x1 groups, stride, spatial size, SE
# channels): MixNet-S's first swish block, a grouped mid block, and a wide stride-2 late block.
PROBES = ((24, 40, 6, (3, 5, 7), 1, 2, 28, 12), (40, 40, 6, (3, 5), 2, 1, 14, 20),
          (120, 200, 6, (3, 5, 7, 9, 11), 1, 2, 14, 60))
PROBE_BATCH = 1
REPEATS = 7   # timed steps per implementation, interleaved; the fastest of each is compared


def cache_file() -> Path:
    """Where measured choices are kept."""
    return cache_dir() / "mixconv_impl.json"


def device_key() -> str:
    """Device, MindSpore version, CPU and probe shapes: what a measured choice is valid for."""
    device = ms.get_context("device_target")
    cpu = hashlib.sha256(cpu_signature().encode()).hexdigest()[:12] if device == "CPU" else "-"
    probes = ";".join("-".join(".".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in p) for p in PROBES)
    return f"{device}|mindspore-{ms.__version__}|cpu-{cpu}|b{PROBE_BATCH}|{probes}"


def choice_key(impls: tuple[str, ...]) -> str:
    """What a choice among ``impls`` is valid for: the device (``device_key``) and the candidates."""
    return f"{device_key()}|from-{'.'.join(impls)}"


def kernels_available() -> bool:
    """True when the C++ kernels can be used here (CPU device, compiler present, build succeeds)."""
    if ms.get_context("device_target") != "CPU":
        return False
    try:
        library_path()
    except KernelUnavailable as exc:
        warnings.warn(f"mixconv_impl 'kernels' unavailable, choosing among the others: {exc}", stacklevel=3)
        return False
    return True


def candidates() -> tuple[str, ...]:
    """The implementations that can run on the current device."""
    return IMPL_NAMES if kernels_available() else tuple(n for n in IMPL_NAMES if n != "kernels")


def probe_layer(cin: int, cout: int, expand: int, kernels: tuple, groups: int, stride: int, _spatial: int,
                se: int) -> LayerSpec:
    """A MixNet block (swish, ReLU inside SE) from a PROBES entry."""
    return LayerSpec(0, 0, kernels, groups, groups, stride, expand, cin, cout, cin * expand, se, "swish", "relu")


class _Probe(nn.Cell):
    """The probe blocks side by side, each on its own input; output is the sum of their means."""

    def __init__(self, name: str) -> None:
        super().__init__()
        impl = concrete(name)
        self.layers = nn.CellList([MixNetBlock(probe_layer(*p), 0.9, 1e-5, impl) for p in PROBES])

    def construct(self, *xs: Tensor) -> Tensor:
        """Sum over probes of the mean output."""
        total = 0.0
        for layer, x in zip(self.layers, xs):
            total = total + ops.mean(layer(x))
        return total


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _probe_inputs() -> list[Tensor]:
    rng = np.random.default_rng(0)
    return [Tensor(rng.standard_normal((PROBE_BATCH, p[0], p[6], p[6]), dtype=np.float32)) for p in PROBES]


@contextmanager
def graph_mode() -> Iterator[None]:
    """Run MindSpore in graph mode inside the block, whatever mode the caller set."""
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        yield
    finally:
        ms.set_context(mode=mode)


def measure(impls: tuple[str, ...], repeats: int = REPEATS) -> dict[str, float]:
    """Fastest seconds of forward + backward through the probe blocks, per implementation: load from other
    processes only adds time, and slows multi-threaded kernels more than others, so a median under load
    can rank a slower implementation first.

    The probe runs in graph mode, as training does, whatever mode the caller is in, and leaves
    NumPy's global random state (from which MindSpore draws initial weights) as it found it, so a
    network seeded before a first ``auto`` build gets the same weights as on any later build.
    """
    state = np.random.get_state()
    try:
        with graph_mode():
            return _measure(impls, repeats)
    finally:
        np.random.set_state(state)


def _measure(impls: tuple[str, ...], repeats: int) -> dict[str, float]:
    xs = _probe_inputs()
    runs = {}
    for impl in impls:
        probe = _Probe(impl)
        probe.set_train(True)
        grad = ms.grad(probe, grad_position=tuple(range(len(xs))), weights=probe.trainable_params())
        runs[impl] = lambda g=grad: g(*xs)[1][0].asnumpy()
        runs[impl]()  # compile
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for _ in range(repeats):  # interleaved, so load changes hit every implementation alike
        for impl in impls:
            times[impl].append(_seconds(runs[impl]))
    return {impl: min(times[impl]) for impl in impls}


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(data: dict) -> None:
    write_atomic(cache_file(), json.dumps(data, indent=1, sort_keys=True))


def auto_impl() -> str:
    """The fastest implementation available on this device: from the cache, or measured now and remembered."""
    impls = candidates()
    key = choice_key(impls)
    stored = _read_cache().get(key, {}).get("impl")
    cached = IMPL_ALIASES.get(stored, stored)
    if cached in impls:
        return cached
    seconds = measure(impls)
    best = min(seconds, key=seconds.get)
    data = _read_cache()
    data[key] = {"impl": best, "seconds": seconds, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    _write_cache(data)
    return best


def resolve_impl(impl: str) -> str:
    """The implementation name ``impl`` stands for (aliases mapped, ``auto`` resolved); ``kernels``
    raises KernelUnavailable when it cannot run here."""
    name = canonical_name(impl)
    if name == AUTO:
        return auto_impl()
    if name == "kernels":
        if ms.get_context("device_target") != "CPU":
            raise KernelUnavailable("mixconv_impl 'kernels' runs on the CPU device only")
        library_path()
    return name
