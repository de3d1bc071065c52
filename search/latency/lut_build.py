"""``build_lut``: measure every choice of every layer of a space at its input shape, plus fixed terms."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from space.cost import network_cost
from space.basics.errors import GenomeError, UsageError
from space.genome import Genome
from space.search_space import SHORT, Dimension, SearchSpace

from .cache import LatencyCache
from .environment import environment
from .lut import FORMAT_VERSION, LatencyTable, LutEntry, option_label, space_document
from .device_turns import DeviceTurns
from .measure import measure_cells, measure_genomes, measure_runners
from .part_export import export_parts
from .protocol import DEFAULT_REPEATS, DEFAULT_WARMUP, LatencyResult, check_protocol
from .target import LatencyTarget, check_target, network_impl

DEFAULT_CALIBRATION = 10
DEFAULT_PASSES = 3


@dataclass(frozen=True)
class Part:
    """One thing the LUT measures: a fixed part or one choice of one layer, and how to build it."""

    part: str
    layer: int
    option: str
    in_shape: tuple[int, int, int]
    build: Callable[[], object]


def layer_choice_genomes(space: SearchSpace, layer: int) -> list[Genome]:
    """The skeleton with layer ``layer`` set to each of its choices (one genome per choice).

    A choice that makes no valid layer (say more kernel groups than channels) is a UsageError naming
    it: a layer's choices depend on its own channels only, so the space's genomes with it cannot be
    built either.
    """
    genomes = []
    for option in space.layer_options(layer):
        try:
            genomes.append(space.decode({Dimension(layer, f, ()).name: v for f, v in option.items()}))
        except GenomeError as exc:
            label = "_".join(f"{SHORT[f]}{v}" for f, v in option.items())
            raise UsageError(f"space '{space.name}' layer {layer} choice {label}: {exc} - remove it from "
                             "the layer's menu") from None
    return genomes


def lut_parts(space: SearchSpace, resolution: int, impl: str = "split") -> list[Part]:
    """Stem, every distinct (layer, choice) and head/classifier, with input shapes at ``resolution``.

    ``impl`` is the MixConv implementation the parts are built with (resolved once if it is a name such
    as ``auto``). The fixed parts are the cells of one skeleton network, built with the first of them.
    """
    from mixnet.blocks import MixNetBlock
    from mixnet.mixconv import implementation
    from mixnet.network import BN_EPS, BN_MOMENTUM, MixNet

    impl = implementation(impl)
    skeleton = functools.cache(lambda: MixNet(space.skeleton, mixconv_impl=impl).parts())
    skeleton_cost = network_cost(space.skeleton, resolution).rows
    parts = [Part("stem", -1, "fixed", skeleton_cost[0].in_shape, lambda: skeleton().stem)]
    for layer in range(len(space.base_genes)):
        seen = set()
        for genome in layer_choice_genomes(space, layer):
            label = option_label(space, layer, genome.normalized().single_genes())
            if label in seen:
                continue
            seen.add(label)
            spec = genome.layers()[layer]
            parts.append(Part("layer", layer, label, skeleton_cost[layer + 1].in_shape,
                              lambda spec=spec: MixNetBlock(spec, BN_MOMENTUM, BN_EPS, impl)))
    head_row = skeleton_cost[-2]
    parts.append(Part("head", -1, "fixed", head_row.in_shape, lambda: skeleton().head))
    parts.append(Part("classifier", -1, "fixed", head_row.out_shape, lambda: skeleton().classifier))
    return parts


def extreme_genomes(space: SearchSpace) -> list[Genome]:
    """The space's lightest and heaviest genomes by multiply-adds (each free choice set alone)."""
    def madds(choice: dict) -> int:
        return network_cost(space.decode(choice)).madds

    light, heavy = {}, {}
    for d in space.dimensions:
        costs = [madds({d.name: c}) for c in d.choices]
        light[d.name] = d.choices[costs.index(min(costs))]
        heavy[d.name] = d.choices[costs.index(max(costs))]
    return [space.decode(light), space.decode(heavy)]


def calibration_genomes(space: SearchSpace, count: int, seed: int) -> list[Genome]:
    """``count`` distinct genomes: the space's lightest and heaviest, then random ones (seeded).

    The two extremes span the range of raw sums, so even two calibration genomes pin the slope
    of the correction instead of extrapolating from two neighbours.
    """
    rng, genomes, keys = random.Random(seed), [], set()
    randoms = (space.random_genome(rng) for _ in range(count * 20))
    for genome in itertools.chain(extreme_genomes(space), randoms):
        if len(genomes) == count:
            break
        if genome.key() not in keys:
            keys.add(genome.key())
            genomes.append(genome)
    return genomes


def entry(part: str, layer: int, option: str, in_shape: tuple[int, ...], result: LatencyResult) -> LutEntry:
    """A LUT row from a measurement."""
    return LutEntry(part=part, layer=layer, option=option, in_shape="x".join(map(str, in_shape)),
                    median_ms=result.median_ms, p90_ms=result.p90_ms, min_ms=result.min_ms,
                    mean_ms=result.mean_ms, cv=result.cv, repeats=result.repeats)


def time_exported_parts(space: SearchSpace, target: LatencyTarget, impl: str, shapes: list[tuple[int, ...]],
                        env: dict, warmup: int, repeats: int, passes: int, bar) -> list[LatencyResult]:
    """The parts exported to ONNX by several processes (``export_parts``, in a shared device turn), then
    each loaded and timed alone in this process."""
    from .backends.onnx_runtime import OrtRunner
    turns = DeviceTurns.on(target.device, target.device_id)
    with tempfile.TemporaryDirectory(prefix="mixnas-lut-") as folder:
        bar.set_postfix_str("exporting parts", refresh=False)
        try:
            with turns.work():
                paths = export_parts(space_document(space), target.resolution, impl, shapes, Path(folder),
                                     bar.update)
        finally:
            turns.close()
        bar.set_postfix_str("timing parts", refresh=False)
        return measure_runners([lambda path=path, shape=shape: OrtRunner(path, shape, target)
                                for path, shape in zip(paths, shapes)], [env] * len(paths), target, warmup,
                               repeats, passes, bar.update, min_span_s=0.0)


def build_lut(space: SearchSpace, target: LatencyTarget, out: "str | Path", progress: bool = True,
              warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS,
              calibrate: int = DEFAULT_CALIBRATION, seed: int = 0,
              cache: LatencyCache | None = None, passes: int = DEFAULT_PASSES) -> LatencyTable:
    """Measure the LUT of ``space`` on ``target`` and write it to ``out`` (CSV, atomically).

    ``calibrate`` random genomes (seed ``seed``) are also measured end to end to fit the linear
    correction; whole-network measurements go through ``cache`` when one is given. Parts and
    genomes are timed in ``passes`` (the quietest kept; see ``measure``), each pass waiting for
    quiet rounds only ``EXTRA_TIME_FACTOR`` times its own duration.
    """
    from tqdm import tqdm

    check_target(target)
    check_protocol(warmup, repeats)
    started = time.perf_counter()
    impl = network_impl(target)
    env = environment(target, impl)
    parts = lut_parts(space, target.resolution, impl)
    genomes = calibration_genomes(space, calibrate, seed)
    exported = target.backend == "onnxruntime"
    with tqdm(total=len(parts) * (1 + exported) + len(genomes), desc="lut build", unit="step", file=sys.stderr,
              disable=not progress, dynamic_ncols=True) as bar:
        shapes = [(target.batch,) + tuple(p.in_shape) for p in parts]
        if exported:
            results = time_exported_parts(space, target, impl, shapes, env, warmup, repeats, passes, bar)
        else:
            results = measure_cells([p.build for p in parts], shapes, [env] * len(parts), target, warmup, repeats,
                                    passes, bar.update, min_span_s=0.0)
        bar.set_postfix_str("whole genomes", refresh=False)
        networks = measure_genomes(genomes, target, warmup, repeats, cache, passes, bar.update, min_span_s=0.0)
    entries = [entry(p.part, p.layer, p.option, p.in_shape, r) for p, r in zip(parts, results)]
    entries += [entry("network", -1, g.to_string(), target.input_shape[1:], r) for g, r in zip(genomes, networks)]
    meta = {"format": "mixnas-lut", "version": FORMAT_VERSION, "space": space_document(space),
            "target": target.to_dict(), "env": env,
            "protocol": {"warmup": warmup, "repeats": repeats, "passes": passes},
            "calibration": {"count": len(genomes), "seed": seed},
            "build_s": round(time.perf_counter() - started, 1),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    table = LatencyTable(meta, entries)
    table.save(out)
    return table
