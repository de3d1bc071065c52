"""``search.py decode``: show a genome, its cost and its blocks."""

from __future__ import annotations

import argparse
import json

import yaml

from .codecs import encode_arch_def, genome_to_yaml, to_tf_strings
from .cost import network_cost
from .basics.errors import UsageError
from .genome import Genome
from .parse import parse_genome
from .search_space import SearchSpace

FORMATS = ("canonical", "tf", "timm", "yaml")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``decode`` subcommand."""
    p = sub.add_parser("decode", help="print a genome's canonical form, parameters, MAdds and blocks",
                       description="Decode a genome (preset, one-line genome or YAML/JSON file).")
    p.add_argument("spec", help="preset (mixnet_s, mixnet_m, mixnet_l), one-line genome or genome file")
    p.add_argument("--resolution", type=int, default=224, help="input size for MAdds (default 224)")
    p.add_argument("--to", choices=FORMATS, default="canonical", help="text form of the genome to print")
    p.add_argument("--space", help="also check that the genome is a point of this search-space file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def genome_text(genome: Genome, fmt: str) -> str:
    """The genome in one of FORMATS."""
    if fmt == "tf":
        return "\n".join(to_tf_strings(genome))
    if fmt == "timm":
        return yaml.safe_dump(encode_arch_def(genome.blocks), default_flow_style=None).strip()
    if fmt == "yaml":
        return genome_to_yaml(genome).strip()
    return genome.to_string()


def block_rows(genome: Genome, resolution: int) -> list[dict]:
    """One row per built part: shapes, choices, parameters and MAdds."""
    cost = network_cost(genome, resolution)
    layers = {f"block {layer.index}": layer for layer in genome.layers()}
    rows = []
    for part in cost.rows:
        row = {"name": part.name, "in": list(part.in_shape), "out": list(part.out_shape),
               "params": part.params, "madds": part.madds}
        layer = layers.get(part.name)
        if layer is not None:
            row.update(kernels=".".join(map(str, layer.kernel_sizes)), expand_ratio=layer.expand_ratio,
                       expand_groups=layer.expand_groups, project_groups=layer.project_groups,
                       stride=layer.stride, se_channels=layer.se_channels, act=layer.act)
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the decoded genome."""
    if args.resolution < 32:
        raise UsageError(f"--resolution {args.resolution} - must be an integer >= 32")
    genome = parse_genome(args.spec)
    space_line = None
    if args.space:
        space = SearchSpace.from_yaml(args.space)
        reason = space.why_not(genome)
        if reason is not None:
            raise UsageError(f"genome is not in space '{space.name}': {reason}")
        space_line = f"in space {space.name}: choice vector {space.encode_vector(genome)}"
    cost = network_cost(genome, args.resolution)
    rows = block_rows(genome, args.resolution)
    if args.json:
        print(json.dumps({"genome": genome.to_string(), "key": genome.key(), "params": cost.params,
                          "madds": cost.madds, "resolution": args.resolution, "blocks": rows}))
        return 0
    print(genome_text(genome, args.to))
    if space_line:
        print(space_line)
    print(f"key {genome.key()}  params {cost.params:,}  MAdds@{args.resolution} {cost.madds / 1e6:.1f}M")
    header = f"{'part':<11}{'in':>15}{'out':>15}{'kernels':>13}{'e':>3}{'a':>3}{'p':>3}{'se':>5}{'act':>7}{'params':>11}{'MAdds':>12}"
    print(header)
    for r in rows:
        shape_in, shape_out = "x".join(map(str, r["in"])), "x".join(map(str, r["out"]))
        extra = (f"{r['kernels']:>13}{r['expand_ratio']:>3}{r['expand_groups']:>3}{r['project_groups']:>3}"
                 f"{r['se_channels']:>5}{r['act']:>7}") if "kernels" in r else " " * 34
        print(f"{r['name']:<11}{shape_in:>15}{shape_out:>15}{extra}{r['params']:>11,}{r['madds']:>12,}")
    return 0
