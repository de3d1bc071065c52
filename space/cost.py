"""Analytic cost model: trainable parameters and multiply-adds, without building the network.

Counted: every convolution and the classifier (multiply-accumulates), the SE 1x1 convolutions;
BatchNorm contributes its trainable gamma and beta to the parameters. Activations, BN, pooling
and element-wise products are not counted as multiply-adds.
"""

from __future__ import annotations

from dataclasses import dataclass

from .genome import Genome, LayerSpec
from .rounding import split_channels


@dataclass(frozen=True)
class LayerCost:
    """Cost of one built block at a given input resolution."""

    name: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    params: int
    madds: int


@dataclass(frozen=True)
class NetworkCost:
    """Cost of a whole network: totals and one row per part (stem, blocks, head, classifier)."""

    params: int
    madds: int
    rows: list[LayerCost]


def conv_out(size: int, stride: int) -> int:
    """Output size of a conv with odd kernel k, padding k//2 and ``stride``."""
    return (size - 1) // stride + 1


def grouped_pointwise_params(cin: int, cout: int, groups: int) -> int:
    """Weights of a 1x1 conv split into ``groups`` dense parts (the references' split rule)."""
    return sum(i * o for i, o in zip(split_channels(cin, groups), split_channels(cout, groups)))


def mixconv_params(channels: int, kernel_sizes: tuple[int, ...]) -> int:
    """Weights of a mixed depthwise conv: one k x k filter per channel of each kernel group."""
    return sum(c * k * k for c, k in zip(split_channels(channels, len(kernel_sizes)), kernel_sizes))


def layer_cost(layer: LayerSpec, size: int) -> LayerCost:
    """Parameters and multiply-adds of one block whose input is ``size`` x ``size``."""
    out_size = conv_out(size, layer.stride)
    params = madds = 0
    if layer.expand_ratio != 1:
        w = grouped_pointwise_params(layer.in_channels, layer.mid_channels, layer.expand_groups)
        params += w + 2 * layer.mid_channels
        madds += w * size * size
    w = mixconv_params(layer.mid_channels, layer.kernel_sizes)
    params += w + 2 * layer.mid_channels
    madds += w * out_size * out_size
    if layer.se_channels:
        w = 2 * layer.mid_channels * layer.se_channels
        params += w + layer.se_channels + layer.mid_channels
        madds += w
    w = grouped_pointwise_params(layer.mid_channels, layer.out_channels, layer.project_groups)
    params += w + 2 * layer.out_channels
    madds += w * out_size * out_size
    return LayerCost(f"block {layer.index}", (layer.in_channels, size, size),
                     (layer.out_channels, out_size, out_size), params, madds)


def network_cost(genome: Genome, resolution: int = 224, in_channels: int = 3) -> NetworkCost:
    """Parameters and multiply-adds of the whole network at ``resolution`` x ``resolution``."""
    stem, head, classes = genome.stem_out, genome.head_channels, genome.num_classes
    size = conv_out(resolution, 2)
    w = in_channels * stem * 9
    rows = [LayerCost("stem", (in_channels, resolution, resolution), (stem, size, size),
                      w + 2 * stem, w * size * size)]
    cin = stem
    for layer in genome.layers():
        rows.append(layer_cost(layer, size))
        size, cin = rows[-1].out_shape[1], layer.out_channels
    w = cin * head
    rows.append(LayerCost("head", (cin, size, size), (head, size, size), w + 2 * head, w * size * size))
    rows.append(LayerCost("classifier", (head, 1, 1), (classes, 1, 1), head * classes + classes,
                          head * classes))
    return NetworkCost(sum(r.params for r in rows), sum(r.madds for r in rows), rows)
