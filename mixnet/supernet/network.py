"""The supernet: one MindSpore network holding every genome of a search space, chosen by tensors.

Each layer keeps its choice in non-trainable parameters (a channel mask, a per-channel kernel-tap
mask, the per-channel kernel sizes and, where expansion 1 is a choice, a switch), which
:meth:`Supernet.select` overwrites. The compiled graph reads them like weights, so moving to another
genome compiles nothing. How the layers compute is an implementation's, as for MixNet
(``mixnet.supernet.compute``): ``Masked`` on MindSpore's operators (the graph an Ascend NPU would
run: every held channel pays the largest kernel), ``Direct`` on the C++ kernels (each channel pays
its own kernel size). Checkpoints are the same whichever computes.
"""

from __future__ import annotations

import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.common.initializer import Normal, initializer

from space.genome import Genome

from ..kernels import ops as kops
from ..layers import ConvBnAct, GroupedConv2d, SqueezeExcite, batch_norm, dense_init, spatial_mean
from ..mixconv import AUTO, implementation
from ..mixconv.base import Implementation
from ..network import BN_EPS, BN_MOMENTUM, HEAD_ACT
from .choices import LayerChoice, SuperLayer, SupernetSpec
from .compute import Direct, Masked, depthwise_to_projection


def _choice(name: str, value: np.ndarray) -> Parameter:
    """A non-trainable parameter holding part of the current choice."""
    return Parameter(Tensor(value), name=name, requires_grad=False)


class SuperDepthwise(nn.Cell):
    """A depthwise conv of ``channels`` kernels of size ``max_kernel``; the choice says which taps each uses:
    ``taps`` as a mask over the kernels, ``meta`` as the C++ direct conv's per-channel kernel sizes.

    With ``transform`` (Once-for-All's kernel transformation), a smaller kernel is not the centre of the
    larger one itself but that centre times a learned matrix, one per layer and size, shared by its
    channels and starting as the identity: size ``k`` comes from the centre of size ``k + 2``'s kernel, down
    from ``max_kernel``. ``levels`` says which size each channel takes (:meth:`kernel`).
    """

    def __init__(self, channels: int, max_kernel: int, stride: int, act: str, eps: float,
                 transform: bool = False) -> None:
        super().__init__()
        shape = (channels, 1, max_kernel, max_kernel)
        self.weight = Parameter(initializer(Normal(math.sqrt(2.0 / (max_kernel * max_kernel))), shape,
                                            mstype.float32), name="weight")
        self.channels, self.max_kernel, self.stride = channels, max_kernel, stride
        self.act, self.eps = act, eps
        self.taps = _choice("taps", np.ones(shape, np.float32))
        self.meta = _choice("meta", kops.direct_meta(stride, [max_kernel] * channels, act, eps).asnumpy())
        self.sizes = transformed_sizes(max_kernel) if transform else ()
        if self.sizes:
            self.transform = Parameter(Tensor(np.concatenate([np.eye(k * k, dtype=np.float32).ravel()
                                                              for k in self.sizes])), name="transform")
            self.levels = _choice("levels", np.zeros((len(self.sizes), channels, 1, 1, 1), np.float32))

    def select(self, choice: LayerChoice) -> None:
        """Use the taps of ``choice``."""
        kernels = choice.channel_kernels(self.channels)
        self.taps.set_data(Tensor(choice.kernel_mask(self.channels, self.max_kernel)))
        self.meta.set_data(kops.direct_meta(self.stride, kernels, self.act, self.eps))
        if self.sizes:
            per_channel = np.array(kernels)
            levels = np.stack([per_channel == k for k in self.sizes]).astype(np.float32)
            self.levels.set_data(Tensor(levels.reshape(self.levels.shape)))

    def kernel(self) -> Tensor:
        """The kernels the choice computes with, ``(channels, 1, max_kernel, max_kernel)``: ``weight``, or with
        the transformation each channel of a smaller size holding its transformed kernel in the centre."""
        if not self.sizes:
            return self.weight
        kernel, level, start = self.weight, self.weight, 0
        for i, k in enumerate(self.sizes):
            centre = level[:, :, 1:k + 1, 1:k + 1].reshape(self.channels, k * k)
            matrix = self.transform[start:start + k ** 4].reshape(k * k, k * k)
            start += k ** 4
            level = ops.matmul(centre, matrix).reshape(self.channels, 1, k, k)
            kernel = kernel + self.levels[i] * (centred(level, self.max_kernel) - kernel)
        return kernel


def transformed_sizes(max_kernel: int) -> tuple[int, ...]:
    """The kernel sizes below ``max_kernel`` that a kernel transformation derives, largest first (down to 3)."""
    return tuple(range(max_kernel - 2, 2, -2))


def centred(kernels: Tensor, size: int) -> Tensor:
    """``(C, 1, k, k)`` kernels in the centre of ``size x size`` ones, zeros around (concatenation: on CPU its
    gradient is cheap where padding's is not)."""
    channels, _, k, _ = kernels.shape
    edge = (size - k) // 2
    side = ops.zeros((channels, 1, k, edge), kernels.dtype)
    rows = ops.concat((side, kernels, side), axis=3)
    band = ops.zeros((channels, 1, edge, size), kernels.dtype)
    return ops.concat((band, rows, band), axis=2)


def add_depthwise_to_projection(cell: nn.Cell, held: SuperLayer, channels: int, impl: Implementation,
                                bn_momentum: float, bn_eps: float, transform: bool) -> None:
    """Give ``cell`` a block's cells from its depthwise stage over ``channels`` channels (at the layer's largest
    kernel, ``transform``: with kernel transformation) to its projection: ``act``, ``depthwise``,
    ``depthwise_bn``, ``se`` (where the layer has it), ``project`` and ``project_bn``."""
    layer = held.widest
    cell.act = impl.activation(layer.act)
    cell.depthwise = SuperDepthwise(channels, held.max_kernel, layer.stride, layer.act, bn_eps, transform)
    cell.depthwise_bn = batch_norm(channels, bn_momentum, bn_eps)
    cell.has_se = bool(layer.se_channels)
    if cell.has_se:
        cell.se = SqueezeExcite(channels, layer.se_channels, layer.se_act, impl)
    cell.project = GroupedConv2d(channels, layer.out_channels, layer.project_groups, impl)
    cell.project_bn = batch_norm(layer.out_channels, bn_momentum, bn_eps)


class OwnIdentity(nn.Cell):
    """A layer's block at expansion 1 (MixNet's depthwise-separable block) with weights of its own: ``depthwise``
    over the block's input channels at the layer's largest kernel, ``depthwise_bn``, ``se``, ``project``,
    ``project_bn``; it computes on MindSpore's operators (it is small next to the widest expansion)."""

    def __init__(self, held: SuperLayer, impl: Implementation, bn_momentum: float, bn_eps: float,
                 transform: bool) -> None:
        super().__init__()
        add_depthwise_to_projection(self, held, held.widest.in_channels, impl, bn_momentum, bn_eps, transform)

    def construct(self, x: Tensor) -> Tensor:
        """The depthwise-separable block's projection of ``x`` (without the skip)."""
        return depthwise_to_projection(self, x)


class SuperBlock(nn.Cell):
    """A MixNet block at its widest expansion and largest kernel; the current choice selects a genome's block.

    Cells: ``expand`` (grouped 1x1), ``expand_bn``, ``depthwise``, ``depthwise_bn``, ``se``, ``project``
    (grouped 1x1), ``project_bn``, each present when the layer has it, and ``own_identity`` (an
    ``OwnIdentity``) where expansion 1 has weights of its own; ``transform``: depthwise kernels with kernel
    transformation.
    """

    def __init__(self, held: SuperLayer, impl: Implementation, bn_momentum: float, bn_eps: float,
                 own_identity: bool = False, transform: bool = False) -> None:
        super().__init__()
        layer, channels = held.widest, held.channels
        self.has_expansion, self.has_identity = held.has_expansion, held.has_identity
        self.own = own_identity
        if self.has_expansion:
            self.expand = GroupedConv2d(layer.in_channels, channels, layer.expand_groups, impl)
            self.expand_bn = batch_norm(channels, bn_momentum, bn_eps)
        if self.has_identity:
            self.identity = _choice("identity", np.ones((), np.float32))
            if own_identity:
                self.own_identity = OwnIdentity(held, impl, bn_momentum, bn_eps, transform)
            else:
                self.place = _choice("place", np.zeros((channels, layer.in_channels, 1, 1), np.float32))
        add_depthwise_to_projection(self, held, channels, impl, bn_momentum, bn_eps, transform)
        self.residual = layer.residual
        self.mask = _choice("mask", np.ones((1, channels, 1, 1), np.float32))
        self.held = held
        self.compute = Direct(layer, bn_eps) if impl.name == "kernels" else Masked()

    def select(self, choice: LayerChoice) -> None:
        """Make the block compute ``choice`` (no recompile: only the choice parameters change)."""
        self.mask.set_data(Tensor(choice.channel_mask(self.held.channels)))
        self.depthwise.select(choice)
        if self.has_identity:
            self.identity.set_data(Tensor(np.float32(choice.identity)))
            if self.own:
                self.own_identity.depthwise.select(choice.on_input())
                return
            place = np.zeros(self.place.shape, np.float32)
            if choice.identity:
                place[choice.channels, np.arange(len(choice.channels)), 0, 0] = 1.0
            self.place.set_data(Tensor(place))

    def construct(self, x: Tensor) -> Tensor:
        """The chosen block's output."""
        return self.compute(self, x)


class Supernet(nn.Cell):
    """Every genome of a search space in one network: stem, super blocks, head, classifier.

    The stem, head and classifier are the skeleton's (the same for every genome), under MixNet's
    names ``stem_conv``, ``head_conv`` and ``classifier``; blocks are ``layers.N``.
    """

    def __init__(self, spec: SupernetSpec, bn_momentum: float = BN_MOMENTUM, bn_eps: float = BN_EPS,
                 impl: "str | Implementation" = AUTO) -> None:
        super().__init__()
        impl, skeleton = implementation(impl), spec.skeleton
        self.spec, self.impl = spec, impl
        self.stem_conv = ConvBnAct(3, skeleton.stem_out, 3, 2, "relu", bn_momentum, bn_eps, impl)
        self.layers = nn.SequentialCell([SuperBlock(held, impl, bn_momentum, bn_eps, spec.own_identity(held),
                                                    spec.kernel_transform)
                                         for held in spec.layers])
        head = skeleton.head_channels
        self.head_conv = ConvBnAct(spec.layers[-1].widest.out_channels, head, 1, 1, HEAD_ACT, bn_momentum, bn_eps,
                                   impl)
        self.dropout = nn.Dropout(p=skeleton.dropout) if skeleton.dropout > 0 else nn.Identity()
        self.classifier = nn.Dense(head, spec.num_classes)
        dense_init(self.classifier, spec.num_classes)
        self.compute = impl.network(HEAD_ACT, bn_eps)
        self.select(spec.space.skeleton)

    def select(self, genome: Genome) -> None:
        """Make the network compute ``genome`` (a genome of the space; UsageError for any other)."""
        for block, choice in zip(self.layers, self.spec.choices(genome)):
            block.select(choice)

    def forward_features(self, x: Tensor) -> Tensor:
        """The selected genome's feature map before pooling."""
        return self.head_conv(self.layers(self.stem_conv(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool, dropout, classifier."""
        return self.classifier(self.dropout(spatial_mean(x)))

    def construct(self, x: Tensor) -> Tensor:
        """Logits of the selected genome for images (N, 3, H, W)."""
        return self.compute(self, x)
