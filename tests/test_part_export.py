"""The LUT's parts exported by several processes: the same graphs as an export in one process."""

from __future__ import annotations

from pathlib import Path

import onnx
import yaml

from search.latency.lut import space_document
from search.latency.lut_build import lut_parts
from search.latency.part_export import export_parts
from space.search_space import SearchSpace
from test_latency_lut import TINY_SPACE


def graph_outline(path: Path) -> tuple:
    """What an exported part computes: its operators in order, its weights' shapes, its input and output shapes."""
    graph = onnx.load(str(path)).graph
    dims = lambda value: tuple(d.dim_value for d in value.type.tensor_type.shape.dim)  # noqa: E731
    return ([n.op_type for n in graph.node], sorted(tuple(t.dims) for t in graph.initializer),
            [dims(v) for v in graph.input], [dims(v) for v in graph.output])


def test_two_processes_export_the_graphs_one_process_exports(tmp_path: Path) -> None:
    space = SearchSpace.from_dict(yaml.safe_load(TINY_SPACE))
    parts = lut_parts(space, 64)
    shapes = [(1,) + tuple(p.in_shape) for p in parts]
    steps: list[int] = []
    folders = {n: tmp_path / f"workers{n}" for n in (1, 2)}
    for folder in folders.values():
        folder.mkdir()
    paths = {n: export_parts(space_document(space), 64, "split", shapes, folder, lambda: steps.append(n), workers=n)
             for n, folder in folders.items()}
    assert steps == [1] * len(parts) + [2] * len(parts)
    outlines = {n: [graph_outline(p) for p in ps] for n, ps in paths.items()}
    assert outlines[2] == outlines[1]
    # each file is its own part: the inputs are the parts' shapes, and a mixed-kernel layer's choice holds
    # more convolutions than its single-kernel twin
    assert [o[2] for o in outlines[2]] == [[s] for s in shapes]
    convs = {p.option: o[0].count("Conv") for p, o in zip(parts, outlines[2]) if p.part == "layer" and p.layer == 1}
    assert len(convs) == 4 and max(convs.values()) > min(convs.values())
