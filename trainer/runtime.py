"""MindSpore execution mode and device from the config."""

from __future__ import annotations

from typing import Any

import mindspore as ms


def set_runtime(cfg: Any) -> None:
    """GRAPH_MODE (``mode: 0``) or PYNATIVE_MODE (``1``), and ``device_target`` when given."""
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == 0 else ms.PYNATIVE_MODE)
    if cfg.device_target and ms.get_context("device_target") != cfg.device_target:
        ms.set_device(cfg.device_target)
