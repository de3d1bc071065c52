"""MixNet building layers in MindSpore: grouped 1x1 conv, mixed depthwise conv, SE, activations.

Attribute names follow MindCV's ``mixnet.py`` so checkpoints load by name: ``grouped_conv``,
``mixed_depthwise_conv``, ``conv_reduce``, ``conv_expand``; a single group is one conv, several
groups a list indexed ``0, 1, ...``. The parameters never depend on the implementation chosen
(``impl``); only the computation does.
"""

from __future__ import annotations

import math

from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.common.initializer import Normal, Uniform, initializer

from space.basics.errors import UsageError
from space.rounding import split_channels

from .numpy_compat import absorb_numpy_init

absorb_numpy_init()

CONCRETE_IMPLS = ("split", "fused", "custom")
# Training 1x1 convs run on the C++ kernel from this many output positions up (28 x 28): below it,
# with hundreds of channels on a few positions, MindSpore's GEMM is faster (bench/mixnet_layers.py).
POINTWISE_MIN_POSITIONS = 784


def check_impl(impl: str) -> None:
    """Raise UsageError unless ``impl`` is a concrete MixConv implementation."""
    if impl not in CONCRETE_IMPLS:
        raise UsageError(f"mixconv impl '{impl}' - allowed: {', '.join(CONCRETE_IMPLS)}")


def kernels_apply(x: Tensor) -> bool:
    """Whether the C++ kernels take ``x``: they are float32 only, so under float16 mixed precision
    (``ms.amp``) the custom implementation computes with MindSpore's operators instead."""
    return x.dtype == mstype.float32


def kernel_ops():
    """The C++ kernel primitives (imported lazily: building them needs a compiler)."""
    from .kernels import ops as kops
    return kops


class Swish(nn.Cell):
    """x * sigmoid(x) on the C++ kernel: one pass forward and one backward."""

    def __init__(self) -> None:
        super().__init__()
        self.op = kernel_ops().swish()

    def construct(self, x: Tensor) -> Tensor:
        """x * sigmoid(x)."""
        if kernels_apply(x):
            return self.op(x)
        return x * ops.sigmoid(x)


def activation(name: str, impl: str = "split") -> nn.Cell:
    """``relu`` -> ReLU, ``swish`` -> x * sigmoid(x) (on the C++ kernel with ``impl="custom"``)."""
    if name == "swish":
        return Swish() if impl == "custom" else nn.SiLU()
    return nn.ReLU()


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


def train_batch_norm_act(op, meta: Tensor, bn: nn.BatchNorm2d, act: nn.Cell, x: Tensor) -> Tensor:
    """``act(bn(x))`` in training: BatchNorm with batch statistics and the activation on one C++ kernel,
    with ``bn``'s moving statistics updated as MindSpore does (``moving = moving * (1 - m) + batch * m``,
    ``m = bn.momentum``, which MindSpore stores as one minus the constructor's momentum; unbiased batch
    variance). A BatchNorm cell set to inference on its own (frozen statistics) runs as it is."""
    if not bn.training:
        return act(bn(x))
    y, mean, var = op(meta, x, bn.gamma, bn.beta)
    count = x.shape[0] * x.shape[2] * x.shape[3]
    m = bn.momentum
    mean = ops.stop_gradient(mean)
    var = ops.stop_gradient(var) * (count / max(count - 1, 1))
    ops.assign(bn.moving_mean, bn.moving_mean * (1 - m) + mean * m)
    ops.assign(bn.moving_variance, bn.moving_variance * (1 - m) + var * m)
    return y


def bn_params(bn: nn.BatchNorm2d) -> tuple:
    """``(gamma, beta, moving_mean, moving_variance)`` for the fused inference kernels."""
    return bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance


class GroupedConv2d(nn.Cell):
    """A 1x1 conv whose input and output channels are split into ``groups`` dense convs.

    With ``impl="custom"`` and channels that split evenly, the groups run as one C++ kernel call.
    """

    def __init__(self, cin: int, cout: int, groups: int, impl: str = "split") -> None:
        super().__init__()
        self.groups = groups
        if groups == 1:
            self.grouped_conv = conv2d(cin, cout, 1)
        else:
            splits = split_channels(cin, groups)
            self.bounds = channel_bounds(splits)
            self.grouped_conv = nn.CellList([conv2d(i, o, 1) for i, o in
                                             zip(splits, split_channels(cout, groups))])
        self.custom = impl == "custom" and cin % groups == 0 and cout % groups == 0
        if self.custom:
            kops = kernel_ops()
            self.meta = kops.pointwise_conv_meta(groups)
            self.op = kops.pointwise_conv()

    def weights(self) -> tuple:
        """One (cout_g, cin_g, 1, 1) weight per group, in channel order."""
        if self.groups == 1:
            return (self.grouped_conv.weight,)
        return tuple(conv.weight for conv in self.grouped_conv)

    def construct(self, x: Tensor) -> Tensor:
        """Apply each group's conv to its channel slice and concatenate."""
        if self.custom and kernels_apply(x) and x.shape[2] * x.shape[3] >= POINTWISE_MIN_POSITIONS:
            weights = self.weights()
            return self.op(self.meta, x, weights[0] if self.groups == 1 else ops.concat(weights, axis=0))
        if self.groups == 1:
            return self.grouped_conv(x)
        return ops.concat([conv(x[:, start:end]) for conv, (start, end) in zip(self.grouped_conv, self.bounds)],
                          axis=1)


class ConvBnAct(nn.SequentialCell):
    """``[conv, bn, act]`` under MindCV's indices 0, 1, 2 (the stem and the head).

    With ``impl="custom"`` a k x k conv (k > 1) runs on the C++ direct convolution, BatchNorm and
    activation on one C++ kernel in training, and at inference conv, BatchNorm and activation run as
    one fused kernel call.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, act: str, bn_momentum: float,
                 bn_eps: float, impl: str = "split") -> None:
        super().__init__([conv2d(cin, cout, kernel, stride), batch_norm(cout, bn_momentum, bn_eps),
                          activation(act)])
        check_impl(impl)
        self.custom = impl == "custom"
        self.direct = self.custom and kernel > 1
        if self.custom:
            kops = kernel_ops()
            self.bn_meta = kops.batch_norm_meta(act, bn_eps)
            self.bn_op = kops.batch_norm_act()
        if self.direct:
            self.meta = kops.direct_meta(stride, [kernel])
            self.fused_meta = kops.direct_meta(stride, [kernel], act, bn_eps)
            self.conv_op = kops.direct_conv(stride)
            self.fused_op = kops.direct_conv_bn_act(stride)
        elif self.custom:
            self.fused_meta = kops.pointwise_meta(act, bn_eps)
            self.pooled_meta = kops.pointwise_meta(act, bn_eps, pooled=True)
            self.fused_op = kops.pointwise(1)
            self.pooled_op = kops.pointwise(1, pooled=True)

    def pooled(self, x: Tensor) -> Tensor:
        """Inference ``mean_hw(act(bn(conv(x))))`` in one kernel call (1x1 conv, ``impl="custom"``)."""
        conv, bn = self.cell_list[0], self.cell_list[1]
        return self.pooled_op(self.pooled_meta, x, conv.weight, *bn_params(bn))

    def construct(self, x: Tensor) -> Tensor:
        """act(bn(conv(x)))."""
        conv, bn, act = self.cell_list[0], self.cell_list[1], self.cell_list[2]
        if not self.custom or not kernels_apply(x):
            return act(bn(conv(x)))
        if not self.training:
            return self.fused_op(self.fused_meta, x, conv.weight, *bn_params(bn))
        y = self.conv_op(self.meta, x, conv.weight) if self.direct else conv(x)
        return train_batch_norm_act(self.bn_op, self.bn_meta, bn, act, y)


class MixedDepthwiseConv(nn.Cell):
    """MixConv: channels split into kernel groups, one depthwise conv per group.

    Parameters are always one conv per group (MindCV names and shapes); ``impl`` only changes how
    the output is computed: ``split`` runs one depthwise conv per group and concatenates; ``fused``
    zero-pads every group's kernel to the largest size and runs one depthwise conv; ``custom`` runs
    the C++ direct convolution, which skips the zero taps (and, at inference, takes the groups'
    kernels as they are and fuses BatchNorm and activation: :meth:`conv_bn_act`).
    """

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...], stride: int, impl: str = "split") -> None:
        super().__init__()
        check_impl(impl)
        self.groups = len(kernel_sizes)
        self.channels = channels
        self.stride = stride
        self.impl = impl
        self.splits = split_channels(channels, self.groups)
        self.bounds = channel_bounds(self.splits)
        if self.groups == 1:
            self.mixed_depthwise_conv = conv2d(channels, channels, kernel_sizes[0], stride, group=channels)
        else:
            self.mixed_depthwise_conv = nn.CellList([conv2d(c, c, k, stride, group=c) for c, k in
                                                     zip(self.splits, kernel_sizes)])
        self.kmax = max(kernel_sizes)
        # ops.operations.Pad, not ops.pad: the latter's gradient (PadV3Grad) hangs from the third
        # training step on in MindSpore 2.10 CPU.
        self.pads = [ops.operations.Pad(((0, 0), (0, 0), (p, p), (p, p))) if p else None
                     for p in ((self.kmax - k) // 2 for k in kernel_sizes)]
        self.channel_kernels = [k for c, k in zip(self.splits, kernel_sizes) for _ in range(c)]
        if impl == "custom":
            kops = kernel_ops()
            self.meta = kops.direct_meta(stride, self.channel_kernels)
            self.conv_op = kops.direct_conv(stride)
            self.fused_op = kops.direct_conv_bn_act(stride)

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

    def fused_meta(self, act: str, eps: float) -> Tensor:
        """The meta tensor of :meth:`conv_bn_act` for activation ``act`` and BatchNorm ``eps``."""
        return kernel_ops().direct_meta(self.stride, self.channel_kernels, act, eps)

    def conv_bn_act(self, x: Tensor, bn: nn.BatchNorm2d, meta: Tensor) -> Tensor:
        """Inference act(bn(mixconv(x))) in one kernel call (``impl="custom"``; meta from :meth:`fused_meta`)."""
        return self.fused_op(meta, x, *self.weights(), *bn_params(bn))

    def construct(self, x: Tensor) -> Tensor:
        """The mixed depthwise convolution of ``x``."""
        if self.impl == "custom" and kernels_apply(x):
            return self.conv_op(self.meta, x, self.padded_weight())
        if self.impl == "fused":
            return ops.conv2d(x, self.padded_weight(), stride=self.stride, pad_mode="pad",
                              padding=self.kmax // 2, groups=self.channels)
        if self.groups == 1:
            return self.mixed_depthwise_conv(x)
        return ops.concat([conv(x[:, start:end]) for conv, (start, end) in
                           zip(self.mixed_depthwise_conv, self.bounds)], axis=1)


class SqueezeExcite(nn.Cell):
    """Squeeze-and-excitation: mean over H,W -> 1x1 reduce (bias) -> act -> 1x1 expand -> sigmoid gate.

    With ``impl="custom"`` the whole of it is one C++ kernel call each way.
    """

    def __init__(self, channels: int, reduced: int, act: str, impl: str = "split") -> None:
        super().__init__()
        self.conv_reduce = conv2d(channels, reduced, 1, bias=True)
        self.act = activation(act)
        self.conv_expand = conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()
        self.custom = impl == "custom"
        if self.custom:
            kops = kernel_ops()
            self.meta = kops.se_meta(act)
            self.op = kops.squeeze_excite()

    def params(self) -> tuple:
        """``(w_reduce, b_reduce, w_expand, b_expand)`` for the fused inference kernel."""
        return self.conv_reduce.weight, self.conv_reduce.bias, self.conv_expand.weight, self.conv_expand.bias

    def construct(self, x: Tensor) -> Tensor:
        """Scale each channel of ``x`` by its learned gate."""
        if self.custom and kernels_apply(x):
            return self.op(self.meta, x, *self.params())
        s = spatial_mean(x, keep_dims=True)
        s = self.gate(self.conv_expand(self.act(self.conv_reduce(s))))
        return x * s


def spatial_mean(x: Tensor, keep_dims: bool = False) -> Tensor:
    """Mean over the spatial axes of an NCHW tensor (global average pooling)."""
    return ops.mean(x, axis=(2, 3), keep_dims=keep_dims)


def dense_init(cell: nn.Dense, num_classes: int) -> None:
    """TF/timm classifier init: uniform(+-1/sqrt(num_classes)), zero bias."""
    bound = 1.0 / math.sqrt(num_classes)
    cell.weight.set_data(initializer(Uniform(bound), cell.weight.shape, cell.weight.dtype))
    cell.bias.set_data(initializer("zeros", cell.bias.shape, cell.bias.dtype))
