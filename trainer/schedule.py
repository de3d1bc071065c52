"""Per-step learning rates, with MindCV's meanings of the scheduler keys.

Warmup: ``warmup_epochs`` of linear increase from ``warmup_factor * lr`` to ``lr``, per step
(at step ``i`` the factor is ``i / (steps_per_epoch * warmup_epochs)``), or per epoch with
``lr_epoch_stair``. Then, for the remaining ``epoch_size - warmup_epochs`` epochs, ``cosine_decay``
goes from ``lr`` to ``min_lr`` over ``decay_epochs`` (``num_cycles`` times, the peak scaled by
``cycle_decay`` each cycle) and stays at ``min_lr`` after; ``step_decay`` multiplies by
``decay_rate`` every ``decay_epochs``; ``multi_step_decay`` at each milestone; ``exponential_decay``
every epoch; ``constant`` keeps ``lr``.
"""

from __future__ import annotations

import math
from typing import Any


def lr_schedule(cfg: Any, steps_per_epoch: int) -> list[float]:
    """The learning rate of every step of the run (``steps_per_epoch * epoch_size`` values)."""
    warmup = min(cfg.warmup_epochs, cfg.epoch_size)
    main_epochs = cfg.epoch_size - warmup
    lrs = [warmup_lr(cfg, i, steps_per_epoch, cfg.warmup_epochs) for i in range(steps_per_epoch * warmup)]
    for i in range(steps_per_epoch * main_epochs):
        t = i // steps_per_epoch if cfg.lr_epoch_stair else i / steps_per_epoch
        lrs.append(main_lr(cfg, t, i // steps_per_epoch))
    return lrs


def warmup_lr(cfg: Any, step: int, steps_per_epoch: int, warmup_epochs: int) -> float:
    """Linear warmup value at ``step``."""
    t = step // steps_per_epoch if cfg.lr_epoch_stair else step / steps_per_epoch
    start = cfg.lr * cfg.warmup_factor
    return start + (cfg.lr - start) * min(t, warmup_epochs) / warmup_epochs


def main_lr(cfg: Any, t: float, epoch: int) -> float:
    """The post-warmup LR at time ``t`` (epochs since warmup ended) in epoch ``epoch`` of that phase."""
    decay_epochs = cfg.effective_decay_epochs
    if cfg.scheduler in ("cosine_decay", "warmup_cosine_decay"):
        cycle = int(t // decay_epochs)
        if cycle >= cfg.num_cycles:
            return cfg.min_lr
        peak = cfg.lr * cfg.cycle_decay ** cycle
        t_cycle = t - cycle * decay_epochs
        return cfg.min_lr + 0.5 * (peak - cfg.min_lr) * (1.0 + math.cos(math.pi * t_cycle / decay_epochs))
    if cfg.scheduler == "step_decay":
        return cfg.lr * cfg.decay_rate ** (epoch // decay_epochs)
    if cfg.scheduler == "multi_step_decay":
        return cfg.lr * cfg.decay_rate ** sum(1 for m in cfg.multi_step_decay_milestones if epoch >= m)
    if cfg.scheduler == "exponential_decay":
        return cfg.lr * cfg.decay_rate ** (t if not cfg.lr_epoch_stair else epoch)
    return cfg.lr
