"""MindSpore execution mode and device from the config."""

from __future__ import annotations

from typing import Any

import mindspore as ms

from mixnet.devices import mindspore_devices
from space.basics.errors import UsageError


def set_runtime(cfg: Any) -> None:
    """GRAPH_MODE (``mode: 0``) or PYNATIVE_MODE (``1``), and ``device_target`` when given.

    A device this MindSpore cannot run on is a UsageError, raised before anything runs.
    """
    if cfg.device_target:
        present = mindspore_devices()
        if cfg.device_target not in present:
            raise UsageError(f"device_target '{cfg.device_target}' is not present on this host - available: "
                             f"{', '.join(present)}")
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == 0 else ms.PYNATIVE_MODE)
    if cfg.device_target and ms.get_context("device_target") != cfg.device_target:
        ms.set_device(cfg.device_target)
