"""Keep MindSpore's interpreter-exit noise (``Cell.__del__ ... AttributeError``) out of user output."""

from __future__ import annotations

import os
import sys

_previous_hook = sys.unraisablehook


def _hook(unraisable) -> None:
    """Drop the harmless errors Cell.__del__ raises while the interpreter shuts down."""
    obj = getattr(unraisable, "object", None)
    if getattr(obj, "__qualname__", "") == "Cell.__del__" or isinstance(unraisable.exc_value, AttributeError) \
            and "total_instance_count" in str(unraisable.exc_value):
        return
    _previous_hook(unraisable)


def quiet_mindspore() -> None:
    """Silence MindSpore's C++ warnings (unless GLOG_v is set) and its exit-time noise."""
    os.environ.setdefault("GLOG_v", "3")
    sys.unraisablehook = _hook
