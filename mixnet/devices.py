"""Devices the installed MindSpore can run on, how many of each this host has, and binding a process to one."""

from __future__ import annotations

import os
from typing import Any, Sequence

from space.basics.errors import UsageError

DEVICES = ("CPU", "GPU", "Ascend")


def device_count(target: str) -> int:
    """Devices of ``target`` on this host: MindSpore's count for GPU and Ascend (0 when its plugin finds
    none); for the CPU, the cores this process may use.

    Every CPU device id of MindSpore runs on the same shared cores, so a CPU id only names a worker's
    place; allowing one per core keeps a typo (``[0, 100]``) from passing.
    """
    if target == "CPU":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    import mindspore as ms
    from mindspore._c_expression import MSContext
    if not MSContext.get_instance().is_pkg_support_device(target):
        return 0
    return int(getattr(ms.device_context, target.lower()).device_count())


def mindspore_devices() -> list[str]:
    """Devices this MindSpore installation can run on: CPU, plus GPU/Ascend when a plugin finds one."""
    return ["CPU"] + [device for device in DEVICES[1:] if device_count(device) > 0]


def default_target() -> str:
    """The device target MindSpore runs on when none is set (the installed package's)."""
    import mindspore as ms
    return str(ms.get_context("device_target"))


def check_device_list(devices: Any, what: str) -> None:
    """Raise a UsageError unless ``devices`` is null, ``all`` or a non-empty list of distinct integers >= 0
    (the host's count is checked by :func:`check_device_ids`, once the target is known)."""
    if devices is None or devices == "all":
        return
    allowed = "allowed: all, null or a non-empty list of distinct device ids (integers >= 0)"
    if not isinstance(devices, list) or not devices:
        raise UsageError(f"{what} {devices!r} - {allowed}")
    for device in devices:
        if not isinstance(device, int) or isinstance(device, bool) or device < 0:
            raise UsageError(f"{what} {devices!r} - {device!r} is not a device id; {allowed}")
    twice = [d for i, d in enumerate(devices) if d in devices[:i]]
    if twice:
        raise UsageError(f"{what} {devices!r} - device {twice[0]} is listed twice; {allowed}")


def check_device_ids(target: str, ids: "Sequence[int] | str") -> tuple[int, ...]:
    """The device ids ``ids`` names on ``target`` (``all``: every one this host has), checked against
    the host; UsageError for a target with no device here or an id beyond the host's."""
    count = device_count(target)
    if count == 0:
        raise UsageError(f"devices {_shown(ids)} - this host has no {target} device, the workers' device_target "
                         f"(available: {', '.join(mindspore_devices())})")
    if ids == "all":
        return tuple(range(count))
    beyond = [i for i in ids if i >= count]
    if beyond:
        has = f"{count} CPU core(s): CPU device ids" if target == "CPU" else f"{count} {target} device(s):"
        raise UsageError(f"devices {_shown(ids)} - device {beyond[0]} is not on this host, which has {has} "
                         f"0..{count - 1}")
    return tuple(ids)


def _shown(ids: "Sequence[int] | str") -> str:
    """``ids`` as the config wrote it."""
    return str(ids) if ids == "all" else str(list(ids))


def bind_device(target: str, device_id: "int | None" = None) -> None:
    """Bind this process's MindSpore to ``target`` (and ``device_id``) before anything runs on it.

    Without an id, a process already on ``target`` keeps the device bound before (a search worker's);
    otherwise MindSpore picks the target's default device. A target absent here, or a process already
    bound elsewhere, is a UsageError.
    """
    import mindspore as ms
    present = mindspore_devices()
    if target not in present:
        raise UsageError(f"device_target '{target}' is not present on this host - available: {', '.join(present)}")
    if device_id is None and ms.get_context("device_target") == target:
        return
    try:
        ms.set_device(target, device_id)
    except RuntimeError:
        wanted = target if device_id is None else f"{target}:{device_id}"
        raise UsageError(f"this process already runs MindSpore on {current_device()}; {wanted} needs a "
                         "new process") from None


def current_device() -> str:
    """The device MindSpore reports for this process, as ``target:id`` (``Ascend:3``, ``CPU:0``)."""
    import mindspore as ms
    return f"{ms.get_context('device_target')}:{ms.get_context('device_id')}"
