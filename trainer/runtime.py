"""MindSpore execution mode and device from the config."""

from __future__ import annotations

from typing import Any

import mindspore as ms

from mixnet.devices import bind_device


def set_runtime(cfg: Any) -> None:
    """GRAPH_MODE (``mode: 0``) or PYNATIVE_MODE (``1``), and ``device_target`` when given.

    A process already bound to a device of ``device_target`` (a search worker on its device id) stays
    there; a device this MindSpore cannot run on, or one other than the process's, is a UsageError,
    raised before anything runs.
    """
    if cfg.device_target:
        bind_device(cfg.device_target)
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == 0 else ms.PYNATIVE_MODE)
