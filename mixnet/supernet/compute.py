"""How a supernet block computes: MindSpore's operators (any device) or the C++ kernels (CPU, float32).

Both compute the same outputs for the channels a genome uses. ``Masked`` runs the depthwise stage as
MindSpore's depthwise conv at the layer's largest kernel, its taps multiplied by the choice's tap
mask: the graph an Ascend NPU would run, where every held channel pays the largest kernel.
``Direct`` hands the per-channel kernel sizes to the C++ direct convolution as a tensor, so each
channel pays only its own kernel size (an unused channel its centre tap), and fuses BatchNorm and
activation as the stand-alone ``kernels`` network does: BatchNorm + activation on one kernel call in
training, and at inference expansion, depthwise and SE + projection as three calls. The direct
convolution computes only the centre of a kernel that meets data (on a 1 x 1 plane, the centre tap),
and ``Masked`` crops its kernels likewise.
Where expansion 1 has weights of its own, that small block computes beside the widest expansion and
the choice's switch picks one of the two outputs.
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from space.genome import LayerSpec

from ..kernels import ops as kops
from ..layers import bn_params
from ..mixconv.base import Compute
from ..mixconv.kernels import BlockKernels, kernels_apply, no_activation, train_batch_norm_act


def expansion(block: nn.Cell, x: Tensor, expanded: Tensor) -> Tensor:
    """The depthwise stage's input: ``expanded``, or with expansion 1 chosen and shared the block's input
    placed in the used channel positions (the others keep the expansion's features, masked later)."""
    if not block.has_identity or block.own:
        return expanded
    placed = ops.conv2d(x, block.place.astype(x.dtype)) + (1 - block.mask) * expanded
    return block.identity * placed + (1 - block.identity) * expanded


def finish(block: nn.Cell, x: Tensor, out: Tensor) -> Tensor:
    """The block's output from its projection ``out`` (plus the input when residual)."""
    if block.residual:
        return x + out
    return out


def with_own_identity(block: nn.Cell, x: Tensor, out: Tensor, own: Tensor) -> Tensor:
    """The block's output ``out`` (its widest expansion's), or with expansion 1 chosen the projection ``own``
    of expansion 1's own weights (plus the input when residual): both compute, and the switch is a tensor,
    so nothing recompiles."""
    return block.identity * finish(block, x, own) + (1 - block.identity) * out


def effective_kernel(kernel: int, height: int, width: int) -> int:
    """The part of a ``kernel`` x ``kernel`` "same" conv that meets data on a ``height`` x ``width`` plane: taps
    farther than the plane's extent from the centre only ever multiply padding."""
    return min(kernel, 2 * max(height, width) - 1)


def masked_depthwise(dw: nn.Cell, x: Tensor) -> Tensor:
    """The depthwise conv of ``x`` with the taps ``dw.taps`` keeps, over the centre of the kernels that
    meets data (``effective_kernel``: on a 1 x 1 plane the centre tap only)."""
    k = effective_kernel(dw.max_kernel, x.shape[2], x.shape[3])
    weight, taps = dw.kernel(), dw.taps
    if k < dw.max_kernel:
        edge = (dw.max_kernel - k) // 2
        weight, taps = weight[:, :, edge:edge + k, edge:edge + k], taps[:, :, edge:edge + k, edge:edge + k]
    return ops.conv2d(x, (weight * taps).astype(x.dtype), stride=dw.stride, pad_mode="pad", padding=k // 2,
                      groups=dw.channels)


def depthwise_to_projection(cell: nn.Cell, h: Tensor, mask: "Tensor | None" = None) -> Tensor:
    """On MindSpore's operators, the projection of ``h`` through ``cell``'s depthwise stage, BatchNorm and
    activation, ``mask`` (zeroing unused channels before anything mixes them), SE where present, projection
    and its BatchNorm (the cells ``network.add_depthwise_to_projection`` gives)."""
    h = cell.act(cell.depthwise_bn(masked_depthwise(cell.depthwise, h)))
    if mask is not None:
        h = h * mask
    if cell.has_se:
        h = cell.se(h)
    return cell.project_bn(cell.project(h))


class Masked(Compute):
    """A supernet block on MindSpore's operators, cell by cell."""

    def __call__(self, block: nn.Cell, x: Tensor) -> Tensor:
        """The chosen block's output. Unused channels compute (with their centre tap) and are zeroed
        before anything mixes channels (SE, projection)."""
        if block.has_expansion:
            h = expansion(block, x, block.act(block.expand_bn(block.expand(x))))
        else:
            h = ops.conv2d(x, block.place.astype(x.dtype))
        out = finish(block, x, depthwise_to_projection(block, h, block.mask))
        if block.own:
            return with_own_identity(block, x, out, block.own_identity(x))
        return out


class Direct(BlockKernels):
    """A supernet block on the C++ kernels; MindSpore's operators where the kernels do not take the input."""

    def __init__(self, layer: LayerSpec, eps: float) -> None:
        super().__init__(layer, eps)
        self.conv_op = kops.direct_conv(layer.stride)
        self.fallback = Masked()

    def layered(self, block: nn.Cell, x: Tensor) -> Tensor:
        """Training, layer by layer: each BatchNorm with its activation as one kernel call, grouped 1x1
        convs on the C++ GEMM from ``POINTWISE_MIN_POSITIONS`` output positions up (MindSpore's below)."""
        if block.has_expansion:
            y = block.expand(x)
            h = expansion(block, x, train_batch_norm_act(self.bn_op, self.act_bn_meta, block.expand_bn, block.act, y))
        else:
            h = ops.conv2d(x, block.place)
        return self.own_or(block, x, finish(block, x, self.depthwise_to_projection(block, h, block.mask)))

    def depthwise_to_projection(self, cell: nn.Cell, h: Tensor, mask: "Tensor | None" = None) -> Tensor:
        """``depthwise_to_projection`` on the kernels: the depthwise stage on the direct conv with the per-channel
        kernel sizes, each BatchNorm with its activation as one kernel call."""
        h = self.conv_op(cell.depthwise.meta, h, cell.depthwise.kernel())
        h = train_batch_norm_act(self.bn_op, self.act_bn_meta, cell.depthwise_bn, cell.act, h)
        if mask is not None:
            h = h * mask
        if cell.has_se:
            h = cell.se(h)
        return train_batch_norm_act(self.bn_op, self.plain_bn_meta, cell.project_bn, no_activation, cell.project(h))

    def own_or(self, block: nn.Cell, x: Tensor, out: Tensor) -> Tensor:
        """``out``, or where expansion 1 has weights of its own, mixed with that block as the switch says."""
        if not block.own:
            return out
        return with_own_identity(block, x, out, self.depthwise_to_projection(block.own_identity, x))

    def fused(self, block: nn.Cell, x: Tensor) -> Tensor:
        """Inference: expansion, depthwise and SE + projection (+ skip) as three kernel calls."""
        if block.has_expansion:
            expanded = self.expand_op(self.expand_meta, x, *block.expand.weights(), *bn_params(block.expand_bn))
            h = expansion(block, x, expanded)
        else:
            h = ops.conv2d(x, block.place)
        dw = block.depthwise
        h = self.dw_op(dw.meta, h, dw.kernel(), *bn_params(block.depthwise_bn)) * block.mask
        extra = block.se.params() if self.se else ()
        if block.residual:
            extra = extra + (x,)
        out = self.project_op(self.project_meta, h, *block.project.weights(), *bn_params(block.project_bn), *extra)
        return self.own_or(block, x, out)

    def __call__(self, block: nn.Cell, x: Tensor) -> Tensor:
        """The chosen block's output."""
        if not kernels_apply(x):
            return self.fallback(block, x)
        if block.training:
            return self.layered(block, x)
        return self.fused(block, x)
