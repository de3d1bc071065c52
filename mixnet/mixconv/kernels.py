"""``kernels``: MixNet on the C++ kernels of ``mixnet/kernels`` (CPU, float32).

At inference a block runs as at most three kernel calls (grouped 1x1 expansion + BatchNorm +
activation; MixConv + BatchNorm + activation; SE folded into the grouped 1x1 projection +
BatchNorm + skip), the stem as one and the head conv + BatchNorm + activation + global pool as
one. In training MixConv and the stem run as direct convolutions, every BatchNorm with its
activation as one kernel, SE and swish as one kernel each way, and grouped 1x1 convs from
``POINTWISE_MIN_POSITIONS`` output positions up on the C++ GEMM. The kernels take float32 only:
under float16 mixed precision (``ms.amp`` O2/O3) every layer computes as ``split`` does, and the
network reports it (``computed_impl``: ``kernels->split (float16)``).
"""

from __future__ import annotations

from typing import Callable

from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from space.genome import LayerSpec
from space.rounding import split_channels

from ..kernels import ops as kops
from ..layers import bn_params
from . import split
from .base import Compute
from .split import Split

# Training 1x1 convs run on the C++ kernel from this many output positions up (28 x 28): below it,
# with hundreds of channels on a few positions, MindSpore's GEMM is faster (bench/mixnet_layers.py).
POINTWISE_MIN_POSITIONS = 784
# Cell flags with which mixed precision (``ms.amp`` O2/O3, ``Cell.to_float``) casts a cell's inputs.
LOW_PRECISION_FLAGS = {"fp16": "float16", "bf16": "bfloat16"}


def kernels_apply(x: Tensor) -> bool:
    """Whether the C++ kernels take ``x``: they are float32 only."""
    return x.dtype == mstype.float32


def channel_kernels(splits: "list[int]", kernel_sizes: tuple[int, ...]) -> list[int]:
    """The kernel size of every channel of a MixConv with channel groups ``splits``."""
    return [k for c, k in zip(splits, kernel_sizes) for _ in range(c)]


def no_activation(x: Tensor) -> Tensor:
    """``x`` itself: the activation after a block's projection."""
    return x


def train_batch_norm_act(op, meta: Tensor, bn: nn.BatchNorm2d, act: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
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


class Swish(nn.Cell):
    """x * sigmoid(x) on the C++ kernel: one pass forward and one backward."""

    def __init__(self) -> None:
        super().__init__()
        self.op = kops.swish()

    def construct(self, x: Tensor) -> Tensor:
        """x * sigmoid(x)."""
        if kernels_apply(x):
            return self.op(x)
        return x * ops.sigmoid(x)


class KernelCall(Compute):
    """A layer's compute as one kernel call ``op(meta, x, ...)``, or as ``split``'s ``fallback`` when the
    kernel does not take the input."""

    def __init__(self, meta: Tensor, op: ops.Custom, fallback: Compute) -> None:
        self.meta = meta
        self.op = op
        self.fallback = fallback


class GroupedConv(KernelCall):
    """A grouped 1x1 conv with equal groups as one kernel call, from ``POINTWISE_MIN_POSITIONS`` up."""

    def __init__(self, groups: int) -> None:
        super().__init__(kops.pointwise_conv_meta(groups), kops.pointwise_conv(), split.GroupedConv())

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """The grouped 1x1 convolution of ``x``."""
        if kernels_apply(x) and x.shape[2] * x.shape[3] >= POINTWISE_MIN_POSITIONS:
            weights = layer.weights()
            return self.op(self.meta, x, weights[0] if layer.groups == 1 else ops.concat(weights, axis=0))
        return self.fallback(layer, x)


class ConvBnAct(Compute):
    """Conv + BatchNorm + activation: one fused call at inference; in training BatchNorm and activation
    on one kernel, after the direct convolution for k x k (k > 1) and MindSpore's conv for 1x1."""

    def __init__(self, kernel: int, stride: int, act: str, eps: float) -> None:
        self.direct = kernel > 1
        if self.direct:
            self.meta = kops.direct_meta(stride, [kernel])
            self.conv_op = kops.direct_conv(stride)
            self.fused_meta = kops.direct_meta(stride, [kernel], act, eps)
            self.fused_op = kops.direct_conv_bn_act(stride)
        else:
            self.fused_meta = kops.pointwise_meta(act, eps)
            self.fused_op = kops.pointwise(1)
        self.bn_meta = kops.batch_norm_meta(act, eps)
        self.bn_op = kops.batch_norm_act()
        self.fallback = split.ConvBnAct()

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """act(bn(conv(x)))."""
        if not kernels_apply(x):
            return self.fallback(layer, x)
        conv, bn, act = layer.cell_list[0], layer.cell_list[1], layer.cell_list[2]
        if not layer.training:
            return self.fused_op(self.fused_meta, x, conv.weight, *bn_params(bn))
        y = self.conv_op(self.meta, x, conv.weight) if self.direct else conv(x)
        return train_batch_norm_act(self.bn_op, self.bn_meta, bn, act, y)


class MixConv(KernelCall):
    """MixConv as the direct convolution, which skips the padded kernel's zero taps."""

    def __init__(self, splits: "list[int]", kernel_sizes: tuple[int, ...], stride: int) -> None:
        super().__init__(kops.direct_meta(stride, channel_kernels(splits, kernel_sizes)), kops.direct_conv(stride),
                         split.MixConv())

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """The mixed depthwise convolution of ``x``."""
        if kernels_apply(x):
            return self.op(self.meta, x, layer.padded_weight())
        return self.fallback(layer, x)


class SqueezeExcite(KernelCall):
    """Squeeze-and-excitation as one kernel call each way."""

    def __init__(self, act: str) -> None:
        super().__init__(kops.se_meta(act), kops.squeeze_excite(), split.SqueezeExcite())

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """``x`` times its gate."""
        if kernels_apply(x):
            return self.op(self.meta, x, *layer.params())
        return self.fallback(layer, x)


class BlockKernels(Compute):
    """The kernel calls of a block on the C++ kernels, whatever gives its depthwise kernel sizes: the
    expansion 1x1 conv with BatchNorm and activation, the depthwise conv with both, the projection with
    BatchNorm, SE gate and residual, and BatchNorm with or without its activation."""

    def __init__(self, layer: LayerSpec, eps: float) -> None:
        self.se = bool(layer.se_channels)
        self.residual = layer.residual
        self.expand_meta = kops.pointwise_meta(layer.act, eps)
        self.expand_op = kops.pointwise(layer.expand_groups)
        self.dw_op = kops.direct_conv_bn_act(layer.stride)
        self.project_meta = kops.pointwise_meta("none", eps, layer.se_act if self.se else None,
                                                residual=self.residual)
        self.project_op = kops.pointwise(layer.project_groups)
        self.bn_op = kops.batch_norm_act()
        self.act_bn_meta = kops.batch_norm_meta(layer.act, eps)
        self.plain_bn_meta = kops.batch_norm_meta("none", eps)


class Block(BlockKernels):
    """A block as at most three fused kernel calls at inference; in training its cells in order with
    each BatchNorm and its activation as one kernel call."""

    def __init__(self, layer: LayerSpec, eps: float) -> None:
        super().__init__(layer, eps)
        self.expand = layer.expand_ratio != 1
        splits = split_channels(layer.mid_channels, len(layer.kernel_sizes))
        self.dw_meta = kops.direct_meta(layer.stride, channel_kernels(splits, layer.kernel_sizes), layer.act, eps)
        self.fallback = split.Block()

    def train_convs(self, block: nn.Cell, x: Tensor) -> Tensor:
        """Training ``convs`` with each BatchNorm and its activation as one kernel call (no skip)."""
        cells = block.convs.cell_list
        h = x
        if self.expand:
            h = train_batch_norm_act(self.bn_op, self.act_bn_meta, cells[1], cells[2], cells[0](h))
        dw = block.dw_index
        h = train_batch_norm_act(self.bn_op, self.act_bn_meta, cells[dw + 1], cells[dw + 2], cells[dw](h))
        if self.se:
            h = cells[dw + 3](h)
        project, bn = cells[block.project_index], cells[block.project_index + 1]
        return train_batch_norm_act(self.bn_op, self.plain_bn_meta, bn, no_activation, project(h))

    def fused(self, block: nn.Cell, x: Tensor) -> Tensor:
        """Inference: expand (1x1 + BN + act), MixConv + BN + act, then SE + project + BN (+ skip) as one call."""
        cells = block.convs.cell_list
        h = x
        if self.expand:
            h = self.expand_op(self.expand_meta, h, *cells[0].weights(), *bn_params(cells[1]))
        dw = block.dw_index
        h = self.dw_op(self.dw_meta, h, *cells[dw].weights(), *bn_params(cells[dw + 1]))
        project, bn = cells[block.project_index], cells[block.project_index + 1]
        extra = cells[dw + 3].params() if self.se else ()
        if self.residual:
            extra = extra + (x,)
        return self.project_op(self.project_meta, h, *project.weights(), *bn_params(bn), *extra)

    def __call__(self, block: nn.Cell, x: Tensor) -> Tensor:
        """The block's output."""
        if not kernels_apply(x):
            return self.fallback(block, x)
        if not block.training:
            return self.fused(block, x)
        out = self.train_convs(block, x)
        if self.residual:
            return x + out
        return out


class Network(Compute):
    """At inference the head conv, BatchNorm, activation and global pool as one kernel call."""

    def __init__(self, head_act: str, eps: float) -> None:
        self.pooled_meta = kops.pointwise_meta(head_act, eps, pooled=True)
        self.pooled_op = kops.pointwise(1, pooled=True)
        self.fallback = split.Network()

    def __call__(self, net: nn.Cell, x: Tensor) -> Tensor:
        """Logits."""
        if net.training or not kernels_apply(x):
            return self.fallback(net, x)
        head = net.head_conv.cell_list
        features = net.layers(net.stem_conv(x))
        return net.classifier(self.pooled_op(self.pooled_meta, features, head[0].weight, *bn_params(head[1])))


class Kernels(Split):
    """The C++ kernels wherever they are faster than MindSpore's operators."""

    name = "kernels"

    def activation(self, name: str) -> nn.Cell:
        """Swish on the kernel; ReLU as MindSpore's."""
        return Swish() if name == "swish" else super().activation(name)

    def grouped_conv(self, cin: int, cout: int, groups: int) -> Compute:
        """The kernel for channels that split into equal groups, else one conv per group."""
        if cin % groups or cout % groups:
            return super().grouped_conv(cin, cout, groups)
        return GroupedConv(groups)

    def conv_bn_act(self, kernel: int, stride: int, act: str, eps: float) -> Compute:
        """Fused at inference, BatchNorm + activation on one kernel in training."""
        return ConvBnAct(kernel, stride, act, eps)

    def mixconv(self, splits: "list[int]", kernel_sizes: tuple[int, ...], stride: int) -> Compute:
        """The direct convolution."""
        return MixConv(splits, kernel_sizes, stride)

    def squeeze_excite(self, act: str) -> Compute:
        """One kernel call each way."""
        return SqueezeExcite(act)

    def block(self, layer: LayerSpec, eps: float) -> Compute:
        """Three fused calls at inference, BatchNorm + activation kernels in training."""
        return Block(layer, eps)

    def network(self, head_act: str, eps: float) -> Compute:
        """The head fused with the global pool at inference."""
        return Network(head_act, eps)


def low_precision(cell: nn.Cell) -> "str | None":
    """``float16`` or ``bfloat16`` when mixed precision casts ``cell``'s inputs to it, else None."""
    flags = cell.get_flags()
    return next((dtype for flag, dtype in LOW_PRECISION_FLAGS.items() if flags.get(flag)), None)


def runs_kernels(cell: nn.Cell) -> bool:
    """Whether ``cell`` calls the C++ kernels when its input is float32."""
    compute = getattr(cell, "compute", None)
    return isinstance(cell, Swish) or isinstance(compute, (KernelCall, ConvBnAct, BlockKernels, Network))


def computed_impl(network: nn.Cell, name: str) -> str:
    """What ``network``, built with the implementation ``name``, computes with: ``name``, or for ``kernels``
    cast to float16 (or bfloat16) by mixed precision the MindSpore operators it falls back to:
    ``kernels->split (float16)``, or ``kernels->split in 3 of 12 cells (float16)`` when only some are."""
    if name != Kernels.name:
        return name
    hosts = [cell for _, cell in network.cells_and_names() if runs_kernels(cell)]
    low = [dtype for dtype in map(low_precision, hosts) if dtype]
    if not low:
        return name
    where = "" if len(low) == len(hosts) else f" in {len(low)} of {len(hosts)} cells"
    return f"{name}->split{where} ({', '.join(sorted(set(low)))})"
