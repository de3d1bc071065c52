"""Which supernet channels and kernel taps a genome uses: the weight-sharing rules, as data.

A supernet layer holds the widest expansion of its menu and, for every depthwise channel, a kernel
of the largest size in its menu. A genome's layer with expansion ``e`` uses the first channels of
each 1x1 group of the widest expansion (so its grouped 1x1 convs are slices of the supernet's);
its kernel-size groups split those channels as MixConv does, and a channel of size ``k`` uses the
centred ``k x k`` taps of its kernel. Expansion 1 (no expansion conv: MixNet's depthwise-separable
block) has weights of its own where the menu also offers a wider expansion (``own``, the default:
its depthwise, SE and projection see the block's input, not expanded features), or (``shared``) feeds
the block's input to the first channels of the widest expansion. Nothing here needs MindSpore.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from space.basics.errors import UsageError
from space.genome import Genome, LayerSpec
from space.rounding import split_channels
from space.search_space import FIELDS, SearchSpace, gene_value

SHARED_FIELDS = ("kernel_sizes", "expand_ratio")
EXPANSION_ONE = ("own", "shared")


@dataclass(frozen=True)
class SuperLayer:
    """One supernet layer: the block at its widest expansion, its largest kernel, and its menu's range."""

    widest: LayerSpec
    max_kernel: int
    has_identity: bool
    has_expansion: bool
    groups: int

    @property
    def channels(self) -> int:
        """Depthwise channels held (those of the widest expansion)."""
        return self.widest.mid_channels


@dataclass(frozen=True)
class LayerChoice:
    """What one layer of a genome uses of its supernet layer."""

    channels: np.ndarray
    kernels: tuple[int, ...]
    identity: bool
    input_kernels: tuple[int, ...] = ()

    def channel_mask(self, total: int) -> np.ndarray:
        """1 for a used channel of the ``total`` held, else 0 (float32, shape ``(1, total, 1, 1)``)."""
        mask = np.zeros((1, total, 1, 1), np.float32)
        mask[0, self.channels] = 1.0
        return mask

    def channel_kernels(self, total: int) -> list[int]:
        """The kernel size of each of the ``total`` held channels: a used channel's own, 1 for an unused one.

        An unused channel computes with its centre tap (and is masked afterwards), so its BatchNorm
        statistics stay those of real features instead of collapsing on zeros, at almost no cost.
        """
        sizes = np.ones(total, np.int64)
        sizes[self.channels] = self.kernels
        return sizes.tolist()

    def on_input(self) -> "LayerChoice":
        """The choice of a block with expansion 1 held on its own: every input channel, the genome's kernel
        groups split over them."""
        return LayerChoice(channels=np.arange(len(self.input_kernels)), kernels=self.input_kernels, identity=True,
                           input_kernels=self.input_kernels)

    def kernel_mask(self, total: int, max_kernel: int) -> np.ndarray:
        """1 for the centred ``k x k`` taps of each channel's kernel (``channel_kernels``), else 0
        (float32, ``(total, 1, K, K)``)."""
        mask = np.zeros((total, 1, max_kernel, max_kernel), np.float32)
        for channel, k in enumerate(self.channel_kernels(total)):
            start = (max_kernel - k) // 2
            mask[channel, 0, start:start + k, start:start + k] = 1.0
        return mask


def first_of_each_group(used: int, held: int, groups: int) -> np.ndarray:
    """Indices of the first channels of each of ``groups`` channel groups: ``used`` of ``held`` in all."""
    starts = np.cumsum([0] + split_channels(held, groups)[:-1])
    return np.concatenate([start + np.arange(n) for start, n in zip(starts, split_channels(used, groups))])


def channel_groups(layer: LayerSpec, where: str) -> int:
    """The 1x1 grouping the used channels follow: the expansion's or the projection's, which must agree."""
    expand, project = layer.expand_groups, layer.project_groups
    if expand > 1 and project > 1 and expand != project:
        raise UsageError(f"{where}: expand_groups {expand} and project_groups {project} - a supernet needs "
                         "them equal where both are above 1")
    return max(expand, project)


@dataclass(frozen=True)
class SupernetSpec:
    """The supernet of a search space for networks trained at ``width`` on ``num_classes`` classes, holding
    expansion 1 with weights of its own or shared (``expansion_one``, one of ``EXPANSION_ONE``), and smaller
    kernels as the centres of larger ones or, with ``kernel_transform``, those centres transformed."""

    space: SearchSpace
    width: float
    num_classes: int
    layers: tuple[SuperLayer, ...]
    expansion_one: str = EXPANSION_ONE[0]
    kernel_transform: bool = False

    @classmethod
    def of(cls, space: SearchSpace, width: "float | None" = None, num_classes: "int | None" = None,
           expansion_one: str = EXPANSION_ONE[0], kernel_transform: bool = False) -> "SupernetSpec":
        """The supernet of ``space`` (width and classes default to the skeleton's); UsageError for a menu
        over anything but kernel sizes and expansion ratios, or an unknown ``expansion_one``."""
        if expansion_one not in EXPANSION_ONE:
            raise UsageError(f"supernet expansion_one '{expansion_one}' - allowed: {', '.join(EXPANSION_ONE)}")
        width = space.skeleton.width if width is None else width
        num_classes = space.skeleton.num_classes if num_classes is None else num_classes
        return cls(space, width, num_classes, tuple(_supernet_layers(space, width)), expansion_one, kernel_transform)

    def own_identity(self, held: SuperLayer) -> bool:
        """Whether ``held`` keeps expansion 1 in weights of its own (its menu also has a wider expansion)."""
        return self.expansion_one == "own" and held.has_identity and held.has_expansion

    @property
    def skeleton(self) -> Genome:
        """The skeleton as the supernet trains it (its width and classes)."""
        return self.trained(self.space.skeleton)

    def trained(self, genome: Genome) -> Genome:
        """``genome`` at the supernet's width and classes: the stand-alone network its weights fit."""
        return genome.with_changes(width=self.width, num_classes=self.num_classes)

    def choices(self, genome: Genome) -> list[LayerChoice]:
        """What each layer of ``genome`` uses of the supernet; UsageError for a genome outside the space."""
        reason = self.space.why_not(genome)
        if reason is not None:
            raise UsageError(f"genome {genome.to_string()} is not in the supernet's space '{self.space.name}': "
                             f"{reason}")
        out = []
        for held, layer in zip(self.layers, self.trained(genome).layers()):
            used = first_of_each_group(layer.mid_channels, held.channels, held.groups)
            out.append(LayerChoice(channels=used, kernels=per_channel(layer.kernel_sizes, layer.mid_channels),
                                   identity=layer.expand_ratio == 1,
                                   input_kernels=per_channel(layer.kernel_sizes, layer.in_channels)))
        return out


def per_channel(kernel_sizes: tuple[int, ...], channels: int) -> tuple[int, ...]:
    """The kernel size of each of ``channels`` channels split into ``kernel_sizes`` groups as MixConv splits them."""
    splits = split_channels(channels, len(kernel_sizes))
    return tuple(k for k, n in zip(kernel_sizes, splits) for _ in range(n))


def _supernet_layers(space: SearchSpace, width: float) -> list[SuperLayer]:
    """One supernet layer per layer of ``space``, at ``width``."""
    widest = {}
    for i, menu in enumerate(space.menus):
        for field in FIELDS:
            if field not in SHARED_FIELDS and len(menu.get(field, ())) > 1:
                raise UsageError(f"space '{space.name}': layer {i} chooses {field} - a supernet shares weights "
                                 f"over {' and '.join(SHARED_FIELDS)} only")
        widest[i] = max(menu.get("expand_ratio", (space.base_genes[i].expand_ratio,)))
    genes = [g.with_changes(expand_ratio=widest[i], expand_groups=g.expand_groups if widest[i] > 1 else 1)
             for i, g in enumerate(space.base_genes)]
    skeleton = space.skeleton.with_changes(blocks=tuple(genes), width=width)
    layers = []
    for i, layer in enumerate(skeleton.layers()):
        menu = space.menus[i]
        kernels = [gene_value("kernel_sizes", k) for k in menu.get("kernel_sizes", ())] or [layer.kernel_sizes]
        expansions = menu.get("expand_ratio", (layer.expand_ratio,))
        layers.append(SuperLayer(widest=layer, max_kernel=max(max(k) for k in kernels),
                                 has_identity=1 in expansions, has_expansion=any(e > 1 for e in expansions),
                                 groups=channel_groups(layer, f"space '{space.name}' layer {i}")))
    return layers
