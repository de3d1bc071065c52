"""C++ kernels for MixConv, compiled at first use and called through MindSpore ``Custom`` ops."""

from .build import KernelUnavailable, cache_dir, library_path

__all__ = ["KernelUnavailable", "cache_dir", "library_path"]
