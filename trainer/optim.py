"""Optimizers with MindCV's weight-decay grouping.

``weight_decay_filter: disable`` (MindCV's default) decays every trainable parameter, BN gamma/beta
and biases included; ``auto`` leaves out BN gamma/beta (MindSpore's own default);
``norm_and_bias`` leaves out BN gamma/beta and biases. The older ``filter_bias_and_bn: True``
means ``norm_and_bias``. Weight decay is L2 added to the gradient (momentum, sgd, adam, rmsprop)
and decoupled for adamw, which also uses bias-corrected moments as MindCV's AdamW does.
"""

from __future__ import annotations

from typing import Any, Sequence

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

NO_DECAY_NAMES = {"disable": (), "auto": ("gamma", "beta"), "norm_and_bias": ("gamma", "beta", "bias")}


def decay_filter(cfg: Any) -> str:
    """The effective ``weight_decay_filter`` (the older ``filter_bias_and_bn`` wins when set)."""
    if cfg.filter_bias_and_bn is not None:
        return "norm_and_bias" if cfg.filter_bias_and_bn else "disable"
    return cfg.weight_decay_filter


def decays(params: Sequence[Parameter], cfg: Any) -> list[float]:
    """The weight decay of each parameter."""
    skip = NO_DECAY_NAMES[decay_filter(cfg)]
    return [0.0 if any(word in p.name for word in skip) else cfg.weight_decay for p in params]


def param_groups(params: Sequence[Parameter], cfg: Any) -> list[dict]:
    """MindSpore parameter groups: a decayed group, an undecayed group, original order kept."""
    per_param = decays(params, cfg)
    decayed = [p for p, wd in zip(params, per_param) if wd > 0]
    plain = [p for p, wd in zip(params, per_param) if wd == 0]
    groups = [{"params": group, "weight_decay": wd} for group, wd in ((decayed, cfg.weight_decay), (plain, 0.0))
              if group]
    return groups + [{"order_params": list(params)}]


def create_optimizer(params: Sequence[Parameter], cfg: Any, lrs: list[float]) -> nn.Optimizer:
    """The optimizer ``cfg.opt`` over ``params`` with the per-step learning rates ``lrs``."""
    groups = param_groups(params, cfg)
    nesterov = cfg.use_nesterov or cfg.opt == "nesterov"
    if cfg.opt in ("momentum", "nesterov"):
        return nn.Momentum(groups, lrs, cfg.momentum, use_nesterov=nesterov)
    if cfg.opt == "sgd":
        return nn.SGD(groups, lrs, momentum=cfg.momentum, nesterov=nesterov)
    if cfg.opt == "adam":
        return nn.Adam(groups, lrs, use_nesterov=nesterov)
    if cfg.opt == "rmsprop":
        return nn.RMSProp(groups, lrs, decay=0.9, momentum=cfg.momentum, epsilon=cfg.eps)
    return AdamW(params, lrs, decays(params, cfg))


_adamw = ops.MultitypeFuncGraph("adamw")


@_adamw.register("Function", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                 "Tensor", "Tensor")
def _adamw_update(fused: Any, beta1: Tensor, beta2: Tensor, eps: Tensor, lr: Tensor, decay_scale: Tensor,
                  weight_decay: Tensor, param: Tensor, m: Tensor, v: Tensor, grad: Tensor) -> Tensor:
    """One fused AdamW update of ``param`` (moments updated in place)."""
    return fused(param, m, v, lr, beta1, beta2, eps, weight_decay * decay_scale, ops.cast(grad, ms.float32))


class AdamW(nn.Optimizer):
    """Adam with bias-corrected moments and decoupled weight decay (beta 0.9/0.999, eps 1e-8).

    The step is MindCV's: ``p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)``. It runs as one fused
    ``AdamWeightDecay`` kernel per parameter, which has no bias correction, so the correction is
    folded into its inputs: ``lr * sqrt(1 - b2^t) / (1 - b1^t)`` as the rate, ``eps * sqrt(1 - b2^t)``
    as epsilon and ``wd * (1 - b1^t) / sqrt(1 - b2^t)`` as the decay give the same update, with a
    graph a fraction of the size (it compiles seconds faster).
    """

    def __init__(self, params: Sequence[Parameter], learning_rate: list[float], weight_decays: list[float],
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(learning_rate, list(params), 0.0)
        self.beta1 = Tensor(beta1, ms.float32)
        self.beta2 = Tensor(beta2, ms.float32)
        self.eps = Tensor(eps, ms.float32)
        self.weight_decays = tuple(Tensor(wd, ms.float32) for wd in weight_decays)
        self.moment1 = self.parameters.clone(prefix="adam_m", init="zeros")
        self.moment2 = self.parameters.clone(prefix="adam_v", init="zeros")
        self.beta1_power = Parameter(Tensor(1.0, ms.float32), name="beta1_power")
        self.beta2_power = Parameter(Tensor(1.0, ms.float32), name="beta2_power")
        self.fused = ops.AdamWeightDecay()
        self.hyper_map = ops.HyperMap()

    def construct(self, gradients: tuple) -> tuple:
        """Apply one step to every parameter."""
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        beta1_power = self.beta1_power * self.beta1
        beta2_power = self.beta2_power * self.beta2
        ops.assign(self.beta1_power, beta1_power)
        ops.assign(self.beta2_power, beta2_power)
        correction1 = 1.0 - beta1_power
        root2 = ops.sqrt(1.0 - beta2_power)
        update = ops.partial(_adamw, self.fused, self.beta1, self.beta2, self.eps * root2, lr * root2 / correction1,
                             correction1 / root2)
        return self.hyper_map(update, self.weight_decays, self.parameters, self.moment1, self.moment2, gradients)
