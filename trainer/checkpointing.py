"""Checkpoints: atomic writes, the run's epoch files, ``best.ckpt``, and reading them back.

An epoch checkpoint ``{prefix}-{epoch}_{steps}.ckpt`` (MindCV's naming) holds the network under
MindCV's parameter names, the optimizer state (``moments.*``, ``global_step``, ...), the EMA
(``ema.*``) and the loss-scale state (``loss_scale.*``), plus ``epoch_num``/``step_num`` and a JSON
record (genome, run settings, best top-1) under ``mixnas_meta``. ``best.ckpt`` holds only the
network weights that were validated (the EMA weights when ``ema`` is on).
"""

from __future__ import annotations

import json
import shutil
import re
from pathlib import Path
from typing import Any

import mindspore as ms
from mindspore import Parameter, Tensor

from space.basics.atomic import TEMPORARY_NAME, atomic_path
from mixnet.checkpoint import fit_report
from space.basics.errors import UsageError

from .processes import process_alive

META_KEY = "mixnas_meta"
BEST_NAME = "best.ckpt"
TRAINING_STATE_PREFIXES = ("moment", "adam_m.", "adam_v.", "mean_square.", "mean_grad.", "accum.", "ema.",
                           "swap.", "loss_scale.", "global_step", "learning_rate", "beta1_power", "beta2_power",
                           "scale_sense", "current_iterator_step", "last_overflow_iterator_step", "epoch_num",
                           "step_num", "updates", "mixnas_")
EPOCH_FILE = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d+)_(?P<steps>\d+)\.ckpt$")


def atomic_save(path: Path, params: dict[str, Any], meta: "dict | None" = None, epoch: "int | None" = None,
                step: "int | None" = None) -> Path:
    """Write ``params`` (name -> Parameter/Tensor) to ``path`` through a temporary file and a rename.

    MindSpore writes the temporary ``....tmp.ckpt`` through its own ``....tmp.tmp``; a killed writer
    leaves one of the two behind (removed by :func:`remove_stale_temporaries` once it is dead), never a
    partial ``path``.
    """
    entries = [{"name": name, "data": value} for name, value in params.items()]
    extra: dict[str, Any] = {}
    if epoch is not None:
        extra["epoch_num"] = epoch
    if step is not None:
        extra["step_num"] = step
    if meta is not None:
        extra[META_KEY] = json.dumps(meta, sort_keys=True)
    with atomic_path(path, suffix=".ckpt") as tmp:
        ms.save_checkpoint(entries, str(tmp), append_dict=extra or None)
    return path


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the half-written files and folders (checkpoints, metrics, search outputs) that killed processes
    left in ``folder``."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        m = TEMPORARY_NAME.match(path.name)
        if m and not process_alive(int(m.group("pid"))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_meta(params: dict) -> dict:
    """The ``mixnas_meta`` record of a loaded checkpoint ({} for other checkpoints)."""
    raw = params.get(META_KEY)
    return json.loads(raw) if isinstance(raw, str) else {}


def network_part(params: dict) -> dict:
    """The entries of a checkpoint that are network weights (training state and metadata left out)."""
    return {k: v for k, v in params.items() if not k.startswith(TRAINING_STATE_PREFIXES) and not isinstance(v, str)}


def load_network_weights(net: Any, params: dict, path: "str | Path") -> None:
    """Copy the network weights of a loaded checkpoint into ``net``; list every name or shape misfit."""
    weights = network_part(params)
    report = fit_report(net, weights)
    if report is not None:
        raise UsageError(f"checkpoint '{path}' does not fit the network - {report}")
    ms.load_param_into_net(net, weights, strict_load=True)


def restore_state(state: dict[str, Parameter], params: dict, path: "str | Path") -> None:
    """Copy optimizer/EMA/loss-scale state into ``state`` (name -> Parameter); all of it must be there."""
    missing = sorted(name for name in state if name not in params)
    if missing:
        shown = ", ".join(missing[:6]) + (f", ... ({len(missing)} in all)" if len(missing) > 6 else "")
        raise UsageError(f"checkpoint '{path}' cannot resume this run - training state missing: {shown} "
                         "(resume_opt needs a checkpoint written by this trainer with the same opt and ema)")
    for name, param in state.items():
        value = params[name]
        if tuple(value.shape) != tuple(param.shape):
            raise UsageError(f"checkpoint '{path}' cannot resume this run - {name} has shape "
                             f"{tuple(value.shape)}, the run needs {tuple(param.shape)}")
        param.set_data(Tensor(value.asnumpy(), param.dtype))


def epoch_checkpoints(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """(epoch, path) of this run's epoch checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = EPOCH_FILE.match(path.name)
        if m and m.group("prefix") == prefix:
            found.append((int(m.group("epoch")), path))
    return sorted(found)


def prune(folder: Path, prefix: str, keep: int, policy: "str | None", top1: dict[int, float]) -> None:
    """Delete epoch checkpoints beyond ``keep``: the oldest (latest_k) or the lowest top-1 (top_k).

    The newest checkpoint always stays, so a stopped run can resume.
    """
    if policy is None:
        return
    found = epoch_checkpoints(folder, prefix)
    if len(found) <= keep:
        return
    newest = found[-1]
    if policy == "top_k":
        ranked = sorted(found[:-1], key=lambda item: (top1.get(item[0], float("-inf")), item[0]), reverse=True)
        kept = set(p for _, p in ranked[:max(keep - 1, 0)]) | {newest[1]}
    else:
        kept = set(p for _, p in found[-keep:])
    for _, path in found:
        if path not in kept:
            path.unlink(missing_ok=True)
