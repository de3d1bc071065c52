"""The number of threads the C++ kernels run on, read and set at run time.

The kernels' thread pool starts with ``$MIXNAS_NUM_THREADS`` threads, else one per CPU of the
process affinity; :func:`set_kernel_threads` changes that for the whole process from the next
kernel call on. The library is the one MindSpore's ``Custom`` ops load (same file, same handle).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

from .build import library_path


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    """The kernel library with the thread-count functions typed."""
    lib = ctypes.CDLL(str(library_path()))
    lib.MixnetKernelThreads.restype = ctypes.c_int
    lib.MixnetKernelThreads.argtypes = []
    lib.MixnetSetKernelThreads.restype = None
    lib.MixnetSetKernelThreads.argtypes = [ctypes.c_int]
    return lib


def kernels_built() -> bool:
    """Whether this process has built or found the kernel library (so networks may run on it)."""
    return library_path.cache_info().currsize > 0


def kernel_threads() -> int:
    """The number of threads the kernels run on, the calling thread included."""
    return _library().MixnetKernelThreads()


def set_kernel_threads(threads: int) -> None:
    """Run the kernels on ``threads`` threads (>= 1) from the next call on, process-wide."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads {threads!r} - must be an integer >= 1")
    _library().MixnetSetKernelThreads(threads)
