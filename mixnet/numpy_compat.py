"""MindSpore 2.10's PyNative argument parser under numpy 2: absorb its one failing first call.

The parser initializes numpy's C API lazily, the first time an operator call converts a Python
number or sequence, through numpy 1's ABI. Under numpy 2 that initialization raises ImportError
and leaves the error set, so that one call fails (``SystemError: ... returned a result with an
exception set``); every later call converts without numpy and succeeds. ``absorb_numpy_init``
makes that first call itself, with an argument no operator accepts (a float shape), so it fails
in the parser under any numpy and launches nothing: the device is not bound and no kernel runs.
"""

from __future__ import annotations

import contextlib
import io

_done = False


def absorb_numpy_init() -> None:
    """Make the parser's first, failing numpy initialization now (once per process), silently."""
    global _done
    if _done:
        return
    _done = True
    import mindspore as ms
    import numpy as np
    probe = ms.Tensor(np.zeros((1,), np.float32))
    with contextlib.redirect_stderr(io.StringIO()):  # numpy prints its ABI notice with a stack
        try:
            ms.ops.reshape(probe, (0.5,))
        except (SystemError, TypeError, ValueError, RuntimeError):
            pass
