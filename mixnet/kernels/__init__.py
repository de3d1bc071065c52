"""C++ kernels for MixConv, compiled at first use and called through MindSpore ``Custom`` ops."""

from .build import KernelUnavailable, library_path

__all__ = ["KernelUnavailable", "library_path"]
