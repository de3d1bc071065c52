"""The software and hardware a latency was measured on, and the part of it that keys the cache."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

from .target import LatencyTarget

# Fields of the environment that change a timing; results differing in any of them are distinct.
KEY_FIELDS = ("backend", "device", "device_name", "batch", "resolution", "threads",
              "mindspore", "onnxruntime", "cann")
CANN_VERSION_FILES = ("compiler/version.info", "version.cfg")
CANN_DEFAULT_HOME = "/usr/local/Ascend/ascend-toolkit/latest"


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


def accelerator_name(device: str) -> str:
    """The device model: the CPU model, the Ascend SoC version, or the GPU name when known."""
    if device == "CPU":
        return cpu_name()
    if device == "Ascend":
        from mindspore._c_expression import MSContext
        return str(MSContext.get_instance().get_ascend_soc_version())
    return device


def environment(target: LatencyTarget, device_name: str | None = None) -> dict:
    """Everything that describes where a measurement runs; ``device_name`` overrides detection."""
    env = {"backend": target.backend, "device": target.device, "device_id": target.device_id,
           "device_name": device_name or accelerator_name(target.device),
           "batch": target.batch, "resolution": target.resolution, "threads": target.thread_count,
           "mindspore": package_version("mindspore"),
           "onnxruntime": package_version("onnxruntime") if target.backend == "onnxruntime" else None,
           "cann": cann_version() if target.device == "Ascend" else None,
           "python": platform.python_version(), "os": platform.platform(terse=True),
           "host_cpu": cpu_name(), "cpu_count": os.cpu_count()}
    return env


def env_key(env: dict) -> str:
    """A short hash of the timing-relevant fields of an environment (see KEY_FIELDS)."""
    text = json.dumps({k: env.get(k) for k in KEY_FIELDS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
