"""The supernet: one MindSpore network holding every genome of a search space, chosen by tensors.

Each layer keeps its choice in non-trainable parameters (a channel mask, a per-channel kernel-tap
mask and, where expansion 1 is a choice, a switch), which :meth:`Supernet.select` overwrites.
The compiled graph reads them like weights, so moving to another genome compiles nothing. The
computation is MindSpore's operators only (the graph an Ascend NPU would run): a masked depthwise
conv at the largest kernel size, so every held channel pays that kernel.
"""

from __future__ import annotations

import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.common.initializer import Normal, initializer

from space.genome import Genome

from ..layers import ConvBnAct, GroupedConv2d, SqueezeExcite, batch_norm, dense_init, spatial_mean
from ..mixconv import concrete
from ..network import BN_EPS, BN_MOMENTUM, HEAD_ACT
from .choices import LayerChoice, SuperLayer, SupernetSpec


def _choice(name: str, value: np.ndarray) -> Parameter:
    """A non-trainable parameter holding part of the current choice."""
    return Parameter(Tensor(value), name=name, requires_grad=False)


class SuperDepthwise(nn.Cell):
    """A depthwise conv of ``channels`` kernels of size ``max_kernel``; a tap mask keeps those in use."""

    def __init__(self, channels: int, max_kernel: int, stride: int) -> None:
        super().__init__()
        shape = (channels, 1, max_kernel, max_kernel)
        self.weight = Parameter(initializer(Normal(math.sqrt(2.0 / (max_kernel * max_kernel))), shape,
                                            mstype.float32), name="weight")
        self.channels, self.stride, self.padding = channels, stride, max_kernel // 2

    def construct(self, x: Tensor, taps: Tensor) -> Tensor:
        """The depthwise conv of ``x`` with the kernel taps ``taps`` keeps."""
        return ops.conv2d(x, self.weight * taps, stride=self.stride, pad_mode="pad", padding=self.padding,
                          groups=self.channels)


class SuperBlock(nn.Cell):
    """A MixNet block at its widest expansion and largest kernel; the current choice selects a genome's block.

    Cells: ``expand`` (grouped 1x1), ``expand_bn``, ``depthwise``, ``depthwise_bn``, ``se``, ``project``
    (grouped 1x1), ``project_bn``, each present when the layer has it.
    """

    def __init__(self, held: SuperLayer, bn_momentum: float, bn_eps: float) -> None:
        super().__init__()
        split = concrete("split")
        layer, channels = held.widest, held.channels
        self.has_expansion, self.has_identity = held.has_expansion, held.has_identity
        if self.has_expansion:
            self.expand = GroupedConv2d(layer.in_channels, channels, layer.expand_groups, split)
            self.expand_bn = batch_norm(channels, bn_momentum, bn_eps)
        if self.has_identity:
            self.place = _choice("place", np.zeros((channels, layer.in_channels, 1, 1), np.float32))
            self.identity = _choice("identity", np.ones((), np.float32))
        self.act = split.activation(layer.act)
        self.depthwise = SuperDepthwise(channels, held.max_kernel, layer.stride)
        self.depthwise_bn = batch_norm(channels, bn_momentum, bn_eps)
        self.has_se = bool(layer.se_channels)
        if self.has_se:
            self.se = SqueezeExcite(channels, layer.se_channels, layer.se_act, split)
        self.project = GroupedConv2d(channels, layer.out_channels, layer.project_groups, split)
        self.project_bn = batch_norm(layer.out_channels, bn_momentum, bn_eps)
        self.residual = layer.residual
        self.mask = _choice("mask", np.ones((1, channels, 1, 1), np.float32))
        self.taps = _choice("taps", np.ones((channels, 1, held.max_kernel, held.max_kernel), np.float32))
        self.held = held

    def select(self, choice: LayerChoice) -> None:
        """Make the block compute ``choice`` (no recompile: only the choice parameters change)."""
        channels = self.held.channels
        self.mask.set_data(Tensor(choice.channel_mask(channels)))
        self.taps.set_data(Tensor(choice.kernel_mask(channels, self.held.max_kernel)))
        if self.has_identity:
            place = np.zeros(self.place.shape, np.float32)
            if choice.identity:
                place[choice.channels, np.arange(len(choice.channels)), 0, 0] = 1.0
            self.place.set_data(Tensor(place))
            self.identity.set_data(Tensor(np.float32(choice.identity)))

    def construct(self, x: Tensor) -> Tensor:
        """The chosen block's output. Unused channels compute too (so their BatchNorm statistics stay those
        of real features) and are zeroed before anything mixes channels (SE, projection)."""
        if self.has_expansion:
            expanded = self.act(self.expand_bn(self.expand(x)))
            h = expanded
            if self.has_identity:  # unused channels carry the expansion's features, never zeros
                placed = ops.conv2d(x, self.place) + (1 - self.mask) * expanded
                h = self.identity * placed + (1 - self.identity) * expanded
        else:
            h = ops.conv2d(x, self.place)
        h = self.act(self.depthwise_bn(self.depthwise(h, self.taps))) * self.mask
        if self.has_se:
            h = self.se(h)
        out = self.project_bn(self.project(h))
        if self.residual:
            return x + out
        return out


class Supernet(nn.Cell):
    """Every genome of a search space in one network: stem, super blocks, head, classifier.

    The stem, head and classifier are the skeleton's (the same for every genome), under MixNet's
    names ``stem_conv``, ``head_conv`` and ``classifier``; blocks are ``layers.N``.
    """

    def __init__(self, spec: SupernetSpec, bn_momentum: float = BN_MOMENTUM, bn_eps: float = BN_EPS) -> None:
        super().__init__()
        split, skeleton = concrete("split"), spec.skeleton
        self.spec = spec
        self.stem_conv = ConvBnAct(3, skeleton.stem_out, 3, 2, "relu", bn_momentum, bn_eps, split)
        self.layers = nn.SequentialCell([SuperBlock(held, bn_momentum, bn_eps) for held in spec.layers])
        head = skeleton.head_channels
        self.head_conv = ConvBnAct(spec.layers[-1].widest.out_channels, head, 1, 1, HEAD_ACT, bn_momentum, bn_eps,
                                   split)
        self.dropout = nn.Dropout(p=skeleton.dropout) if skeleton.dropout > 0 else nn.Identity()
        self.classifier = nn.Dense(head, spec.num_classes)
        dense_init(self.classifier, spec.num_classes)
        self.select(spec.space.skeleton)

    def select(self, genome: Genome) -> None:
        """Make the network compute ``genome`` (a genome of the space; UsageError for any other)."""
        for block, choice in zip(self.layers, self.spec.choices(genome)):
            block.select(choice)

    def forward_features(self, x: Tensor) -> Tensor:
        """The selected genome's feature map before pooling."""
        return self.head_conv(self.layers(self.stem_conv(x)))

    def construct(self, x: Tensor) -> Tensor:
        """Logits of the selected genome for images (N, 3, H, W)."""
        return self.classifier(self.dropout(spatial_mean(self.forward_features(x))))
