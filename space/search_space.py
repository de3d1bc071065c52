"""A MixNet search space: a fixed skeleton plus, per layer, menus of choices.

The YAML form (``configs/space/mixnet_s.yaml``)::

    skeleton: mixnet_s            # any genome spec: channels, strides, depths, SE, activations
    choices:                      # menus applied to every layer
      kernel_sizes: ["3", "3.5", "3.5.7", "3.5.7.9", "3.5.7.9.11"]
      expand_ratio: [3, 6]
      expand_groups: [1, 2]       # optional
      project_groups: [1, 2]      # optional
      se_ratio: ["0", "0.25", "0.5"]   # optional
    layers:                       # optional per-layer (0-based) menus replacing the above
      0: {expand_ratio: [1]}

Choices are Optuna-friendly: kernel groups and SE ratios are strings, the others integers.
A field without a menu keeps the skeleton's value.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .basics.documents import load_document
from .basics.errors import GenomeError, UsageError, unknown_key_error
from .genome import BlockGene, Genome
from .parse import parse_genome

FIELDS = ("kernel_sizes", "expand_ratio", "expand_groups", "project_groups", "se_ratio")
SHORT = {"kernel_sizes": "k", "expand_ratio": "e", "expand_groups": "a", "project_groups": "p",
         "se_ratio": "se"}
SPACE_KEYS = ("skeleton", "choices", "layers", "name")
GENOME_SAMPLINGS = ("uniform", "spread")   # how fidelity checks draw genomes; the first is the default


def size_rank(field: str, choice: Any) -> tuple:
    """How large a menu choice makes a layer, for sorting a menu from smallest to largest: kernel
    groups by their largest kernel then their count, expansion and SE ratios by value, 1x1 group
    counts inversely (more groups, fewer weights)."""
    if field == "kernel_sizes":
        sizes = [int(k) for k in str(choice).split(".")]
        return (max(sizes), len(sizes))
    if field in ("expand_groups", "project_groups"):
        return (-int(choice),)
    return (float(choice),)


def kernel_choice(kernels: tuple[int, ...]) -> str:
    """(3, 5, 7) -> '3.5.7' (the categorical value used in the space)."""
    return ".".join(str(k) for k in kernels)


def gene_value(field: str, choice: Any) -> Any:
    """A menu choice -> the BlockGene field value."""
    if field == "kernel_sizes":
        return tuple(int(k) for k in str(choice).split("."))
    if field == "se_ratio":
        return float(choice)
    return int(choice)


def choice_of(field: str, gene: BlockGene) -> Any:
    """A BlockGene field -> the menu value that stands for it."""
    value = getattr(gene, field)
    if field == "kernel_sizes":
        return kernel_choice(value)
    if field == "se_ratio":
        return f"{value:g}"
    return value


@dataclass(frozen=True)
class Dimension:
    """One free choice: a layer, a gene field and its menu."""

    layer: int
    field: str
    choices: tuple

    @property
    def name(self) -> str:
        """The Optuna parameter name, e.g. ``l03_k``."""
        return f"l{self.layer:02d}_{SHORT[self.field]}"


def _normalize_menu(field: str, values: Any, where: str) -> tuple:
    """Validate a menu from YAML and turn it into categorical values (str or int)."""
    if not isinstance(values, list) or not values:
        raise UsageError(f"{where}: menu for '{field}' must be a non-empty list")
    out = []
    for v in values:
        if field == "kernel_sizes":
            text = kernel_choice(tuple(v)) if isinstance(v, list) else str(v)
            parts = text.split(".")
            if not all(p.isdigit() and int(p) >= 3 and int(p) % 2 for p in parts):
                raise UsageError(f"{where}: kernel group '{text}' - kernel sizes must be odd integers >= 3")
            out.append(text)
        elif field == "se_ratio":
            try:
                ratio = float(v)
            except (TypeError, ValueError):
                raise UsageError(f"{where}: SE ratio {v!r} - must be a number in [0, 1]") from None
            if not 0 <= ratio <= 1:
                raise UsageError(f"{where}: SE ratio {v!r} - must be a number in [0, 1]")
            out.append(f"{ratio:g}")
        else:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"{where}: {field} {v!r} - must be an integer >= 1")
            out.append(v)
    if len(set(out)) != len(out):
        raise UsageError(f"{where}: menu for '{field}' repeats a choice")
    return tuple(out)


class SearchSpace:
    """A skeleton genome and per-layer menus; samples, decodes and tests genomes."""

    def __init__(self, skeleton: Genome, menus: Sequence[Mapping[str, tuple]], name: str = "space"):
        self.name = name
        self.skeleton = skeleton.normalized()
        self.base_genes = self.skeleton.single_genes()
        if len(menus) != len(self.base_genes):
            raise UsageError(f"space '{name}': {len(menus)} layer menus for "
                             f"{len(self.base_genes)} skeleton layers")
        self.menus = [dict(m) for m in menus]
        self.dimensions = [Dimension(i, f, tuple(m[f])) for i, m in enumerate(self.menus)
                           for f in FIELDS if f in m and len(m[f]) > 1]

    @classmethod
    def from_yaml(cls, path: "str | Path") -> "SearchSpace":
        """Load a space file; every problem is a UsageError naming the file."""
        return cls.from_dict(load_document(path, "space file"), str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "space") -> "SearchSpace":
        """Build a space from its YAML document."""
        if not isinstance(doc, dict):
            raise UsageError(f"{source}: expected a mapping with 'skeleton' and 'choices'")
        for key in doc:
            if key not in SPACE_KEYS:
                raise unknown_key_error(str(key), SPACE_KEYS, source, GenomeError)
        try:
            skeleton = parse_genome(str(doc.get("skeleton", "mixnet_s")))
        except GenomeError as exc:
            raise UsageError(f"{source}: skeleton: {exc}") from None
        common = cls._menus(doc.get("choices") or {}, f"{source}: choices")
        layers = doc.get("layers") or {}
        if not isinstance(layers, dict):
            raise UsageError(f"{source}: 'layers' must map layer numbers to menus")
        n_layers = len(skeleton.normalized().single_genes())
        menus = [dict(common) for _ in range(n_layers)]
        for idx, menu in layers.items():
            if not isinstance(idx, int) or not 0 <= idx < n_layers:
                raise UsageError(f"{source}: layer {idx!r} - layers are 0..{n_layers - 1}")
            menus[idx].update(cls._menus(menu or {}, f"{source}: layer {idx}"))
        space = cls(skeleton, menus, name=str(doc.get("name", Path(source).stem)))
        reason = space.why_not(space.skeleton)
        if reason is not None:
            raise UsageError(f"{source}: the skeleton is not a point of its own space: {reason}")
        return space

    @staticmethod
    def _menus(doc: Any, where: str) -> dict[str, tuple]:
        """Validate a mapping of field -> menu."""
        if not isinstance(doc, dict):
            raise UsageError(f"{where}: expected a mapping of field -> list of choices")
        for key in doc:
            if key not in FIELDS:
                raise unknown_key_error(str(key), FIELDS, where, GenomeError)
        return {f: _normalize_menu(f, v, where) for f, v in doc.items()}

    @property
    def cardinality(self) -> int:
        """Number of distinct choice vectors."""
        return math.prod(len(d.choices) for d in self.dimensions)

    def layer_options(self, layer: int) -> list[dict[str, Any]]:
        """Every combination of the menus of one layer, as field -> choice."""
        menu = self.menus[layer]
        combos: list[dict[str, Any]] = [{}]
        for field in FIELDS:
            if field in menu:
                combos = [dict(c, **{field: v}) for c in combos for v in menu[field]]
        return combos

    def decode(self, choices: Mapping[str, Any]) -> Genome:
        """Choices by parameter name (absent free ones keep the skeleton) -> normalized genome."""
        genes = list(self.base_genes)
        for i, menu in enumerate(self.menus):
            changes = {}
            for field, values in menu.items():
                name = Dimension(i, field, values).name
                value = choices.get(name, values[0] if len(values) == 1 else choice_of(field, genes[i]))
                if value not in values:
                    raise UsageError(f"layer {i}: {field} {value!r} not in menu {list(values)}")
                changes[field] = gene_value(field, value)
            if changes.get("expand_ratio", genes[i].expand_ratio) == 1:
                changes["expand_groups"] = 1
            genes[i] = genes[i].with_changes(**changes)
        return self.skeleton.with_changes(blocks=tuple(genes)).normalized()

    def decode_vector(self, indices: Sequence[int]) -> Genome:
        """A vector of menu indices, one per free dimension -> genome."""
        if len(indices) != len(self.dimensions):
            raise UsageError(f"choice vector has {len(indices)} entries; the space has "
                             f"{len(self.dimensions)} free dimensions")
        return self.decode({d.name: d.choices[i] for d, i in zip(self.dimensions, indices)})

    def encode_vector(self, genome: Genome) -> list[int]:
        """The choice vector of a genome in this space (raises when it is outside)."""
        reason = self.why_not(genome)
        if reason is not None:
            raise UsageError(f"genome is not in space '{self.name}': {reason}")
        genes = genome.normalized().single_genes()
        return [d.choices.index(choice_of(d.field, genes[d.layer])) for d in self.dimensions]

    def sample(self, trial: Any) -> Genome:
        """Ask an Optuna trial for one choice per free dimension (str/int categoricals)."""
        return self.decode({d.name: trial.suggest_categorical(d.name, list(d.choices))
                            for d in self.dimensions})

    def random_genome(self, rng: random.Random) -> Genome:
        """A uniformly random genome of the space."""
        return self.decode({d.name: rng.choice(d.choices) for d in self.dimensions})

    def graded_genome(self, rng: random.Random, level: float) -> Genome:
        """A random genome leaning to the small (``level`` 0) or large (1) end of every menu: each
        choice's place in its menu sorted by size is drawn from Binomial(len - 1, level), so level 0
        is the smallest genome, 1 the largest and 0.5 centres every layer's menu."""
        if not 0.0 <= level <= 1.0:
            raise UsageError(f"level {level} - must be in [0, 1]")
        choices = {}
        for d in self.dimensions:
            ordered = sorted(d.choices, key=lambda c, f=d.field: size_rank(f, c))
            choices[d.name] = ordered[sum(rng.random() < level for _ in range(len(ordered) - 1))]
        return self.decode(choices)

    def why_not(self, genome: Genome) -> "str | None":
        """None when ``genome`` is a point of the space, else which layer and choice is not."""
        genes = genome.normalized().single_genes()
        if len(genes) != len(self.base_genes):
            return f"it has {len(genes)} layers; the space has {len(self.base_genes)}"
        for name in ("stem_channels", "head_channels", "width"):
            if getattr(genome, name) != getattr(self.skeleton, name):
                return f"{name} {getattr(genome, name)} differs from the skeleton's {getattr(self.skeleton, name)}"
        for i, (gene, base) in enumerate(zip(genes, self.base_genes)):
            menu = self.menus[i]
            for field in ("repeats", "stride", "in_channels", "out_channels", "act", "se_act") + FIELDS:
                value = choice_of(field, gene) if field in FIELDS else getattr(gene, field)
                if field in menu:
                    if value not in menu[field]:
                        return f"layer {i}: {field} {value} not in menu {list(menu[field])}"
                elif field == "expand_groups" and gene.expand_ratio == 1:
                    continue
                elif value != (choice_of(field, base) if field in FIELDS else getattr(base, field)):
                    return f"layer {i}: {field} {value} is fixed to {getattr(base, field)} in this space"
        return None

    def contains(self, genome: Genome) -> bool:
        """True when ``genome`` is a point of the space."""
        return self.why_not(genome) is None
