"""The training step: forward with a given dropout mask, smoothed cross-entropy, loss scaling,
gradient averaging across ranks, optional clipping, the optimizer, and an optional weight EMA.

Cells here are built with ``auto_prefix=False`` so the network keeps MindCV's parameter names.
The dropout mask is an input (drawn on the host from (seed, rank, step)), which makes a resumed
run draw the same masks as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from mixnet import MixNet
from mixnet.layers import spatial_mean

DYNAMIC_SCALE_FACTOR = 2.0
DYNAMIC_SCALE_WINDOW = 2000
EMA_WARMUP_UPDATES = 2000.0
DROPOUT_STREAM = 0xD80


class TrainForward(nn.Cell):
    """Training logits of a MixNet: features, global average pool, ``* keep`` mask, classifier."""

    def __init__(self, net: MixNet) -> None:
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, images: Tensor, keep: Tensor) -> Tensor:
        """Logits for ``images`` with the (already rescaled) dropout ``keep`` mask on the pooled features."""
        pooled = spatial_mean(self.net.forward_features(images))
        return self.net.classifier(pooled * keep.astype(pooled.dtype))


def dropout_mask(rate: float, batch: int, channels: int, seed: int, rank: int, step: int) -> np.ndarray:
    """Inverted-dropout keep mask (values 0 or 1/(1-rate)) for one step."""
    if rate <= 0:
        return np.ones((batch, channels), np.float32)
    rng = np.random.default_rng([seed, rank, step, DROPOUT_STREAM])
    return (rng.random((batch, channels), dtype=np.float32) >= rate).astype(np.float32) / (1.0 - rate)


class SmoothedCrossEntropy(nn.Cell):
    """Mean cross-entropy against (1 - s) * target + s / classes; labels are indices or soft targets."""

    def __init__(self, smoothing: float, soft_labels: bool) -> None:
        super().__init__(auto_prefix=False)
        self.smoothing = smoothing
        self.soft_labels = soft_labels

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The loss of a batch."""
        classes = logits.shape[-1]
        log_probs = ops.log_softmax(logits, -1)
        if self.soft_labels:
            target = labels
        else:
            target = ops.one_hot(labels, classes, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))
        target = target * (1.0 - self.smoothing) + self.smoothing / classes
        return -(target * log_probs).sum(-1).mean()


class ScaledLoss(nn.Cell):
    """Loss of the training forward, in float32, multiplied by the loss scale."""

    def __init__(self, forward: nn.Cell, loss_fn: nn.Cell) -> None:
        super().__init__(auto_prefix=False)
        self.forward = forward
        self.loss_fn = loss_fn

    def construct(self, images: Tensor, labels: Tensor, keep: Tensor, scale: Tensor) -> Tensor:
        """``loss * scale``."""
        logits = ops.cast(self.forward(images, keep), ms.float32)
        return self.loss_fn(logits, labels) * scale


class LossScaler(nn.Cell):
    """Loss-scale state: fixed, or dynamic (halve on overflow, double after 2000 finite steps)."""

    def __init__(self, value: float, dynamic: bool) -> None:
        super().__init__(auto_prefix=False)
        self.dynamic = dynamic
        self.value = Parameter(Tensor(value, ms.float32), name="loss_scale.value", requires_grad=False)
        self.good_steps = Parameter(Tensor(0, ms.int32), name="loss_scale.good_steps", requires_grad=False)

    def construct(self, finite: Tensor) -> Tensor:
        """Update the scale after a step whose gradients were ``finite`` (dynamic only)."""
        if not self.dynamic:
            return finite
        grown = self.good_steps + 1 >= DYNAMIC_SCALE_WINDOW
        kept = ops.select(grown, self.value * DYNAMIC_SCALE_FACTOR, self.value)
        shrunk = ops.maximum(self.value / DYNAMIC_SCALE_FACTOR, 1.0)
        new_value = ops.select(finite, kept, shrunk)
        new_good = ops.select(finite, ops.select(grown, ops.zeros_like(self.good_steps), self.good_steps + 1),
                              ops.zeros_like(self.good_steps))
        ops.assign(self.value, new_value)
        ops.assign(self.good_steps, new_good)
        return finite


_ema_update = ops.MultitypeFuncGraph("ema_update")


@_ema_update.register("Tensor", "Tensor", "Tensor")
def _ema_assign(decay: Tensor, shadow: Tensor, weight: Tensor) -> Tensor:
    """shadow = decay * shadow + (1 - decay) * weight."""
    return ops.assign(shadow, shadow * decay + weight.astype(shadow.dtype) * (1.0 - decay))


class WeightEMA(nn.Cell):
    """EMA of every network parameter (BN statistics included) with MindCV's ramp-up of the decay."""

    def __init__(self, params: list[Parameter], decay: float) -> None:
        super().__init__(auto_prefix=False)
        self.decay = decay
        self.weights = ParameterTuple(params)
        self.shadow = self.weights.clone(prefix="ema", init="same")
        for p in self.shadow:
            p.requires_grad = False
        self.updates = Parameter(Tensor(0.0, ms.float32), name="ema.updates", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def construct(self) -> tuple:
        """One EMA update."""
        updates = self.updates + 1.0
        ops.assign(self.updates, updates)
        decay = self.decay * (1.0 - ops.exp(-updates / EMA_WARMUP_UPDATES))
        return self.hyper_map(ops.partial(_ema_update, decay), self.shadow, self.weights)


class PassThrough(nn.Cell):
    """Identity on a tuple of gradients (the single-process stand-in for the gradient reducer)."""

    def construct(self, grads: tuple) -> tuple:
        """``grads`` unchanged."""
        return grads


_unscale = ops.MultitypeFuncGraph("unscale")


@_unscale.register("Tensor", "Tensor")
def _unscale_grad(inverse: Tensor, grad: Tensor) -> Tensor:
    """grad / loss_scale, in the gradient's dtype."""
    return grad * inverse.astype(grad.dtype)


class TrainStep(nn.Cell):
    """One optimization step; returns the (unscaled) loss."""

    def __init__(self, forward: nn.Cell, optimizer: nn.Optimizer, cfg: Any, soft_labels: bool, world: int,
                 ema: "WeightEMA | None") -> None:
        super().__init__(auto_prefix=False)
        self.loss = ScaledLoss(forward, SmoothedCrossEntropy(cfg.label_smoothing, soft_labels))
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.grad_fn = ops.value_and_grad(self.loss, None, self.weights)
        dynamic = cfg.loss_scale_type == "dynamic" or cfg.dynamic_loss_scale
        self.scaler = LossScaler(cfg.loss_scale, dynamic)
        self.check_overflow = dynamic or cfg.drop_overflow_update
        self.unscale = dynamic or cfg.loss_scale != 1.0
        self.reducer = nn.DistributedGradReducer(self.weights, mean=True, degree=world) if world > 1 \
            else PassThrough()
        self.clip = cfg.clip_grad
        self.clip_value = cfg.clip_value
        self.use_ema = ema is not None
        self.ema = ema if ema is not None else PassThrough()
        self.hyper_map = ops.HyperMap()

    def construct(self, images: Tensor, labels: Tensor, keep: Tensor) -> Tensor:
        """Forward, backward, update."""
        scale = self.scaler.value
        loss, grads = self.grad_fn(images, labels, keep, scale)
        if self.unscale:
            grads = self.hyper_map(ops.partial(_unscale, 1.0 / scale), grads)
        grads = self.reducer(grads)
        if self.clip:
            grads = ops.clip_by_global_norm(grads, self.clip_value)
        loss = loss / scale
        if self.check_overflow:
            finite = ms.amp.all_finite(grads)
            if finite:
                loss = ops.depend(loss, self.optimizer(grads))
                if self.use_ema:
                    loss = ops.depend(loss, self.ema())
            loss = ops.depend(loss, self.scaler(finite))
        else:
            loss = ops.depend(loss, self.optimizer(grads))
            if self.use_ema:
                loss = ops.depend(loss, self.ema())
        return loss
