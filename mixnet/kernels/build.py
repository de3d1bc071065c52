"""Compile the C++ kernels at first use and cache the shared library by source hash.

The library is built with ``g++ -O3 -march=native -shared -fPIC -pthread`` into the user cache
directory (``$MIXNAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mixnas``, else ``~/.cache/mixnas``), under
a name derived from the source, the flags, the compiler version and the CPU, so a changed source or
another machine sharing the home directory never picks up a stale or foreign binary. The output is
written to a temporary file and renamed into place, so concurrent builds cannot leave a partial file.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from space.basics.atomic import atomic_path
from space.basics.cache import cache_dir
from space.basics.errors import UsageError

KERNEL_DIR = Path(__file__).parent
SOURCES = ("batch_norm.cpp", "direct_conv.cpp", "pointwise.cpp", "threads.cpp", "training.cpp")
HEADERS = ("common.h",)
FLAGS = ("-std=c++17", "-O3", "-march=native", "-shared", "-fPIC", "-pthread")


class KernelUnavailable(UsageError):
    """The C++ kernels cannot be built here (no compiler, or the compile failed)."""


def compiler() -> str:
    """The C++ compiler to use: ``$CXX`` or ``g++``; KernelUnavailable when it is not installed."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise KernelUnavailable(f"no C++ compiler: '{name}' is not on PATH (install g++ or set CXX); "
                                "use mixconv_impl='split' or 'padded' instead of 'kernels'")
    return path


def cpu_signature() -> str:
    """The CPU model and feature flags, since ``-march=native`` code is only valid on such a CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return f"{fields.get('model name', '')}|{fields.get('flags', '')}"


def _compiler_version(cxx: str) -> str:
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cxx


def library_name(cxx: str) -> str:
    """File name of the built library for these sources, compiler, flags and CPU."""
    digest = hashlib.sha256()
    sources = [(KERNEL_DIR / name).read_bytes() for name in SOURCES + HEADERS]
    for part in (*sources, " ".join(FLAGS).encode(), _compiler_version(cxx).encode(), cpu_signature().encode()):
        digest.update(part)
        digest.update(b"\0")
    return f"mixnet-kernels-{digest.hexdigest()[:16]}.so"


@lru_cache(maxsize=1)
def library_path() -> Path:
    """Path of the compiled kernel library, building it on first use; KernelUnavailable on failure."""
    cxx = compiler()
    target = cache_dir() / "kernels" / library_name(cxx)
    if target.is_file():
        return target
    with atomic_path(target, suffix=".so") as tmp:
        proc = subprocess.run([cxx, *FLAGS, "-o", str(tmp), *(str(KERNEL_DIR / name) for name in SOURCES)],
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise KernelUnavailable(f"compiling the kernels in {KERNEL_DIR} failed:\n{proc.stderr.strip()}")
    return target
