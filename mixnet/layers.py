"""MixNet building layers in MindSpore: grouped 1x1 conv, mixed depthwise conv, SE, conv + BN + act.

Attribute names follow MindCV's ``mixnet.py`` so checkpoints load by name: ``grouped_conv``,
``mixed_depthwise_conv``, ``conv_reduce``, ``conv_expand``; a single group is one conv, several
groups a list indexed ``0, 1, ...``. A layer holds its parameters and a parameter-free ``compute``
object from the MixConv implementation it is built with (``mixnet.mixconv``), which its
``construct`` calls with the layer itself: the parameters never depend on the implementation, only
the computation does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import Normal, Uniform, initializer

from space.rounding import split_channels

from .numpy_compat import absorb_numpy_init

if TYPE_CHECKING:
    from .mixconv.base import Implementation

absorb_numpy_init()


def activation(name: str) -> nn.Cell:
    """``relu`` -> ReLU, ``swish`` -> x * sigmoid(x), as MindSpore cells."""
    return nn.SiLU() if name == "swish" else nn.ReLU()


def conv2d(cin: int, cout: int, kernel: int, stride: int = 1, group: int = 1,
           bias: bool = False) -> nn.Conv2d:
    """A conv with symmetric ``k//2`` padding and TF/timm's fan-out normal initialization."""
    fan_out = kernel * kernel * cout // group
    return nn.Conv2d(cin, cout, kernel, stride=stride, pad_mode="pad", padding=kernel // 2,
                     group=group, has_bias=bias, weight_init=Normal(math.sqrt(2.0 / fan_out)),
                     bias_init="zeros")


def batch_norm(channels: int, momentum: float, eps: float) -> nn.BatchNorm2d:
    """BatchNorm2d with momentum (MindSpore convention: moving = moving*m + batch*(1-m)) and eps set."""
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


def channel_bounds(splits: "list[int]") -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of consecutive channel groups of the given sizes.

    Groups are sliced as MindCV does (``x[:, start:end]``): compiling a training graph costs about a
    third more CPU time with ``ops.split``.
    """
    ends = [sum(splits[:i + 1]) for i in range(len(splits))]
    return [(end - size, end) for end, size in zip(ends, splits)]


def bn_params(bn: nn.BatchNorm2d) -> tuple:
    """``(gamma, beta, moving_mean, moving_variance)`` for the fused inference kernels."""
    return bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance


class GroupedConv2d(nn.Cell):
    """A 1x1 conv whose input and output channels are split into ``groups`` dense convs."""

    def __init__(self, cin: int, cout: int, groups: int, impl: Implementation) -> None:
        super().__init__()
        self.groups = groups
        splits = split_channels(cin, groups)
        self.bounds = channel_bounds(splits)
        if groups == 1:
            self.grouped_conv = conv2d(cin, cout, 1)
        else:
            self.grouped_conv = nn.CellList([conv2d(i, o, 1) for i, o in
                                             zip(splits, split_channels(cout, groups))])
        self.compute = impl.grouped_conv(cin, cout, groups)

    def weights(self) -> tuple:
        """One (cout_g, cin_g, 1, 1) weight per group, in channel order."""
        if self.groups == 1:
            return (self.grouped_conv.weight,)
        return tuple(conv.weight for conv in self.grouped_conv)

    def construct(self, x: Tensor) -> Tensor:
        """The grouped 1x1 convolution of ``x``."""
        return self.compute(self, x)


class ConvBnAct(nn.SequentialCell):
    """``[conv, bn, act]`` under MindCV's indices 0, 1, 2 (the stem and the head)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, act: str, bn_momentum: float,
                 bn_eps: float, impl: Implementation) -> None:
        super().__init__([conv2d(cin, cout, kernel, stride), batch_norm(cout, bn_momentum, bn_eps),
                          impl.activation(act)])
        self.compute = impl.conv_bn_act(kernel, stride, act, bn_eps)

    def construct(self, x: Tensor) -> Tensor:
        """act(bn(conv(x)))."""
        return self.compute(self, x)


class MixedDepthwiseConv(nn.Cell):
    """MixConv: channels split into kernel groups, one depthwise conv per group.

    Parameters are always one conv per group (MindCV names and shapes), however the
    implementation computes the output.
    """

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...], stride: int, impl: Implementation) -> None:
        super().__init__()
        self.groups = len(kernel_sizes)
        splits = split_channels(channels, self.groups)
        self.bounds = channel_bounds(splits)
        if self.groups == 1:
            self.mixed_depthwise_conv = conv2d(channels, channels, kernel_sizes[0], stride, group=channels)
        else:
            self.mixed_depthwise_conv = nn.CellList([conv2d(c, c, k, stride, group=c) for c, k in
                                                     zip(splits, kernel_sizes)])
        kmax = max(kernel_sizes)
        # ops.operations.Pad, not ops.pad: the latter's gradient (PadV3Grad) hangs from the third
        # training step on in MindSpore 2.10 CPU.
        self.pads = [ops.operations.Pad(((0, 0), (0, 0), (p, p), (p, p))) if p else None
                     for p in ((kmax - k) // 2 for k in kernel_sizes)]
        self.compute = impl.mixconv(splits, kernel_sizes, stride)

    def weights(self) -> tuple:
        """One (c_g, 1, k_g, k_g) weight per kernel group, in channel order."""
        if self.groups == 1:
            return (self.mixed_depthwise_conv.weight,)
        return tuple(conv.weight for conv in self.mixed_depthwise_conv)

    def padded_weight(self) -> Tensor:
        """All groups' kernels zero-padded to the largest size, as one (C, 1, K, K) tensor."""
        if self.groups == 1:
            return self.mixed_depthwise_conv.weight
        weights = [pad(w) if pad is not None else w for w, pad in zip(self.weights(), self.pads)]
        return ops.concat(weights, axis=0)

    def construct(self, x: Tensor) -> Tensor:
        """The mixed depthwise convolution of ``x``."""
        return self.compute(self, x)


class SqueezeExcite(nn.Cell):
    """Squeeze-and-excitation: mean over H,W -> 1x1 reduce (bias) -> act -> 1x1 expand -> sigmoid gate."""

    def __init__(self, channels: int, reduced: int, act: str, impl: Implementation) -> None:
        super().__init__()
        self.conv_reduce = conv2d(channels, reduced, 1, bias=True)
        self.act = activation(act)
        self.conv_expand = conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()
        self.compute = impl.squeeze_excite(act)

    def params(self) -> tuple:
        """``(w_reduce, b_reduce, w_expand, b_expand)`` for the fused kernels."""
        return self.conv_reduce.weight, self.conv_reduce.bias, self.conv_expand.weight, self.conv_expand.bias

    def construct(self, x: Tensor) -> Tensor:
        """Scale each channel of ``x`` by its learned gate."""
        return self.compute(self, x)


def spatial_mean(x: Tensor, keep_dims: bool = False) -> Tensor:
    """Mean over the spatial axes of an NCHW tensor (global average pooling)."""
    return ops.mean(x, axis=(2, 3), keep_dims=keep_dims)


def dense_init(cell: nn.Dense, num_classes: int) -> None:
    """TF/timm classifier init: uniform(+-1/sqrt(num_classes)), zero bias."""
    bound = 1.0 / math.sqrt(num_classes)
    cell.weight.set_data(initializer(Uniform(bound), cell.weight.shape, cell.weight.dtype))
    cell.bias.set_data(initializer("zeros", cell.bias.shape, cell.bias.dtype))
