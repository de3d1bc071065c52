"""The software and hardware a latency was measured on, and the part of it that keys the cache."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .target import LatencyTarget

# Fields of the environment that change a timing; results differing in any of them are distinct.
KEY_FIELDS = ("backend", "device", "device_name", "batch", "resolution", "threads", "mixconv_impl",
              "kernels_build", "mindspore", "onnxruntime", "cann")
CANN_VERSION_FILES = ("compiler/version.info", "version.cfg")
CANN_DEFAULT_HOME = "/usr/local/Ascend/ascend-toolkit/latest"
NVIDIA_SMI_TIMEOUT_S = 30


def package_version(name: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cann_version() -> str | None:
    """The CANN toolkit version from ``$ASCEND_HOME_PATH`` (or the default install), or None."""
    home = Path(os.environ.get("ASCEND_HOME_PATH") or CANN_DEFAULT_HOME)
    for name in CANN_VERSION_FILES:
        path = home / name
        if path.is_file():
            match = re.search(r"^\s*version\s*=\s*(\S+)", path.read_text(errors="replace"),
                              re.IGNORECASE | re.MULTILINE)
            if match:
                return match.group(1).strip("\"'")
    return None


def cpu_name() -> str:
    """The host CPU model (``/proc/cpuinfo``), or what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def gpu_name(device_id: int) -> str:
    """The model of CUDA device ``device_id`` (counted in ``$CUDA_VISIBLE_DEVICES``) from nvidia-smi.

    LookupError, with the reason, when it cannot be determined.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible is not None else None
    if ids is not None and not 0 <= device_id < len(ids):
        raise LookupError(f"device_id {device_id} is not in CUDA_VISIBLE_DEVICES={visible!r}")
    tool = shutil.which("nvidia-smi")
    if tool is None:
        raise LookupError("nvidia-smi is not on PATH")
    ident = ids[device_id] if ids is not None else str(device_id)
    try:
        proc = subprocess.run([tool, "--query-gpu=name", "--format=csv,noheader", "-i", ident],
                              capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LookupError(f"nvidia-smi failed: {exc}") from None
    names = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not names or not names[0].strip():
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LookupError(f"nvidia-smi -i {ident} gave no GPU name (exit {proc.returncode}"
                          f"{': ' + detail[0] if detail else ''})")
    return names[0].strip()


def accelerator_name(device: str, device_id: int = 0) -> str:
    """The device model: the CPU model, the Ascend SoC version or the GPU name; LookupError when unknown."""
    if device == "CPU":
        return cpu_name()
    if device == "GPU":
        return gpu_name(device_id)
    from mindspore._c_expression import MSContext
    soc = str(MSContext.get_instance().get_ascend_soc_version() or "")
    if not soc:
        raise LookupError("MindSpore reports no Ascend SoC version")
    return soc


@lru_cache(maxsize=1)
def kernels_build() -> str | None:
    """The C++ kernels' build: the hash naming their library (sources, flags, compiler, CPU); None
    when they cannot be built here."""
    from mixnet.kernels.build import KernelUnavailable, compiler, library_name
    try:
        return library_name(compiler()).removeprefix("mixnet-kernels-").removesuffix(".so")
    except KernelUnavailable:
        return None


def environment(target: LatencyTarget, mixconv_impl: str, device_name: str | None = None) -> dict:
    """Everything that describes where a measurement runs and what runs: ``mixconv_impl`` is the MixConv
    implementation the measured networks are built with (resolved: ``split``, ``padded`` or ``kernels``,
    see ``target.network_impl``), with the kernels' build when it is ``kernels``; ``device_name``
    overrides detection.

    A device model that cannot be determined is recorded as ``unknown <device>`` (a name no real
    model has, so such results never share a cache key with a known model), with the reason
    under ``device_name_unknown``.
    """
    unknown = None
    if device_name is None:
        try:
            device_name = accelerator_name(target.device, target.device_id)
        except LookupError as exc:
            device_name, unknown = f"unknown {target.device}", str(exc)
    env = {"backend": target.backend, "device": target.device, "device_id": target.device_id,
           "device_name": device_name,
           "batch": target.batch, "resolution": target.resolution, "threads": target.thread_count,
           "mixconv_impl": mixconv_impl,
           "kernels_build": kernels_build() if mixconv_impl == "kernels" else None,
           "mindspore": package_version("mindspore"),
           "onnxruntime": package_version("onnxruntime") if target.backend == "onnxruntime" else None,
           "cann": cann_version() if target.device == "Ascend" else None,
           "python": platform.python_version(), "os": platform.platform(terse=True),
           "host_cpu": cpu_name(), "cpu_count": os.cpu_count()}
    if unknown:
        env["device_name_unknown"] = unknown
    return env


def env_key(env: dict) -> str:
    """A short hash of the timing-relevant fields of an environment (see KEY_FIELDS)."""
    text = json.dumps({k: env.get(k) for k in KEY_FIELDS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
