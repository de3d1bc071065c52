"""Loading weights by name, with a report of what does not fit."""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
from mindspore import nn

from space.basics.errors import UsageError


class CheckpointMismatch(UsageError):
    """A checkpoint whose parameter names or shapes do not fit the network."""


def read_checkpoint(path: "str | Path") -> dict:
    """Parameters of a MindSpore checkpoint file; a clear error when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint '{path}' not found")
    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError) as exc:
        raise UsageError(f"checkpoint '{path}' cannot be read: {str(exc).splitlines()[0]}") from None


def fit_report(net: nn.Cell, params: dict, ignore_prefixes: tuple[str, ...] = ()) -> "str | None":
    """None when ``params`` fit ``net`` exactly, else one line listing missing, unexpected and shape mismatches."""
    own = net.parameters_dict()
    given = {k: v for k, v in params.items() if not k.startswith(ignore_prefixes)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    shapes = [f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in given and tuple(given[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if names:
            shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts)


def load_weights(net: nn.Cell, path: "str | Path", ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load a checkpoint into ``net``; raise CheckpointMismatch unless every name and shape fits."""
    params = read_checkpoint(path)
    report = fit_report(net, params, ignore_prefixes)
    if report is not None:
        raise CheckpointMismatch(f"checkpoint '{path}' does not fit the network - {report}")
    ms.load_param_into_net(net, {k: v for k, v in params.items() if k in net.parameters_dict()},
                           strict_load=True)
