"""How well a LUT predicts measured latency: share within +-10%, MAPE, Kendall tau, error histogram."""

from __future__ import annotations

import math
import random
import sys

from space.genome import Genome

from ..ranking import kendall_tau
from .cache import LatencyCache
from .lut import LatencyTable
from .measure import measure_genomes
from .protocol import DEFAULT_REPEATS, DEFAULT_WARMUP
from .target import network_impl

DEFAULT_CHECK_PASSES = 3

HISTOGRAM_EDGES = (-10.0, -5.0, -2.0, 2.0, 5.0, 10.0)
DEFAULT_CHECK_SEED = 1


def histogram(errors_pct: list[float]) -> dict[str, int]:
    """Counts of signed percentage errors in the bins cut at HISTOGRAM_EDGES."""
    edges = (-math.inf,) + HISTOGRAM_EDGES + (math.inf,)
    counts = {}
    for lo, hi in zip(edges, edges[1:]):
        label = f"[{lo:g}%,{hi:g}%)".replace("inf%", "inf")
        counts[label] = sum(lo <= e < hi for e in errors_pct)
    return counts


def scores(measured: list[float], predicted: list[float]) -> dict:
    """``within_10pct`` (share), ``mape`` (percent), ``kendall_tau`` and the error histogram."""
    errors = [100.0 * (p - m) / m for m, p in zip(measured, predicted)]
    return {"n": len(measured),
            "within_10pct": sum(abs(e) <= 10.0 for e in errors) / len(errors),
            "mape": sum(abs(e) for e in errors) / len(errors),
            "kendall_tau": kendall_tau(measured, predicted),
            "histogram": histogram(errors)}


def held_out_genomes(table: LatencyTable, count: int, seed: int) -> list[Genome]:
    """``count`` distinct random genomes of the LUT's space that are not calibration genomes."""
    taken = {e.option for e in table.calibration}
    rng, genomes = random.Random(seed), []
    for _ in range(count * 20):
        if len(genomes) == count:
            break
        genome = table.space.random_genome(rng)
        if genome.to_string() not in taken:
            taken.add(genome.to_string())
            genomes.append(genome)
    return genomes


def check_lut(table: LatencyTable, count: int, seed: int = DEFAULT_CHECK_SEED,
              cache: LatencyCache | None = None, warmup: int = DEFAULT_WARMUP,
              repeats: int = DEFAULT_REPEATS, progress: bool = True,
              passes: int = DEFAULT_CHECK_PASSES) -> dict:
    """Measure ``count`` held-out genomes on the LUT's target and score the prediction.

    The genomes run the MixConv implementation the LUT's parts ran (UsageError when this host would
    run another, e.g. ``auto`` picks ``split`` here where it picked ``kernels`` on the LUT's host).

    Measured and predicted values are the table's statistic (median or min); the genomes are
    timed in ``passes`` (the quietest kept, see ``measure``). The top-level
    scores are for the corrected prediction; ``uncorrected`` holds those of the plain sum, and
    ``genomes`` one row per genome.
    """
    from tqdm import tqdm

    table.ensure_matches(mixconv_impl=network_impl(table.target))
    genomes = held_out_genomes(table, count, seed)
    with tqdm(total=len(genomes), desc="lut check", unit="genome", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        results = measure_genomes(genomes, table.target, warmup, repeats, cache, passes, bar.update,
                                  min_span_s=0.0)
    rows = []
    for genome, result in zip(genomes, results):
        rows.append({"genome": genome.to_string(), "measured_ms": getattr(result, f"{table.statistic}_ms"),
                     "predicted_ms": table.predict(genome), "raw_ms": table.predict_raw(genome),
                     "cv": result.cv, "stable": result.env.get("stable")})
    measured = [r["measured_ms"] for r in rows]
    report = scores(measured, [r["predicted_ms"] for r in rows])
    scale, offset = table.correction
    report.update(seed=seed, statistic=table.statistic, correction={"scale": scale, "offset_ms": offset,
                                         "calibration_genomes": len(table.calibration)},
                  uncorrected=scores(measured, [r["raw_ms"] for r in rows]), genomes=rows)
    return report
