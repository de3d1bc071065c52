"""Devices the installed MindSpore can run on."""

from __future__ import annotations

DEVICES = ("CPU", "GPU", "Ascend")


def mindspore_devices() -> list[str]:
    """Devices this MindSpore installation can run on: CPU, plus GPU/Ascend when a plugin finds one."""
    import mindspore as ms
    from mindspore._c_expression import MSContext
    found = ["CPU"]
    for device in DEVICES[1:]:
        if MSContext.get_instance().is_pkg_support_device(device):
            module = getattr(ms.device_context, device.lower())
            if module.device_count() > 0:
                found.append(device)
    return found
