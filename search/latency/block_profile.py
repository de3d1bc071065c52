"""``profile_blocks``: a genome's parts (stem, every block, head, classifier) timed one by one on a
device, beside the whole network timed in the same run, with each part's share, MAdds and ms/GMAdd."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from space.cost import network_cost
from space.genome import Genome

from .environment import environment
from .measure import measure_cells
from .protocol import DEFAULT_REPEATS, DEFAULT_WARMUP, MIN_SPAN_S
from .target import LatencyTarget, check_target, network_impl

PASSES = 2


@dataclass(frozen=True)
class PartTiming:
    """One part of a network: its name, input shape, median and p90 latency and its multiply-adds."""

    part: str
    in_shape: tuple[int, int, int]
    median_ms: float
    p90_ms: float
    cv: float
    madds: int


@dataclass(frozen=True)
class BlockProfile:
    """Every part of one network and the whole network, timed in one run on one target."""

    genome: Genome
    target: LatencyTarget
    env: dict
    parts: list[PartTiming]
    whole_ms: float

    @property
    def parts_ms(self) -> float:
        """Sum of the parts' medians."""
        return sum(p.median_ms for p in self.parts)

    @property
    def overhead_ms(self) -> float:
        """Whole network minus the sum of its parts: per-call overhead the parts pay and the network
        does not (negative), or time between parts the parts do not see (positive)."""
        return self.whole_ms - self.parts_ms

    def rows(self) -> list[dict]:
        """One dict per part, then ``parts`` (their sum), ``network`` and ``overhead``, for a CSV."""
        total_madds = sum(p.madds for p in self.parts)
        rows = [{"part": p.part, "in_shape": "x".join(map(str, p.in_shape)), "median_ms": p.median_ms,
                 "p90_ms": p.p90_ms, "cv": p.cv, "share": p.median_ms / self.parts_ms, "madds": p.madds,
                 "ms_per_gmadd": ms_per_gmadd(p.median_ms, p.madds)} for p in self.parts]
        rows.append({"part": "parts", "median_ms": self.parts_ms, "share": 1.0, "madds": total_madds,
                     "ms_per_gmadd": ms_per_gmadd(self.parts_ms, total_madds)})
        rows.append({"part": "network", "median_ms": self.whole_ms, "madds": total_madds,
                     "ms_per_gmadd": ms_per_gmadd(self.whole_ms, total_madds)})
        rows.append({"part": "overhead", "median_ms": self.overhead_ms})
        return rows


def ms_per_gmadd(ms: float, madds: int) -> float | None:
    """Milliseconds per billion multiply-adds (None for a part without any)."""
    return ms / (madds / 1e9) if madds else None


def part_names(genome: Genome) -> list[str]:
    """``stem``, ``block 1`` ... ``block N`` (built blocks, repeats expanded), ``head``, ``classifier``."""
    return ["stem"] + [f"block {i + 1}" for i in range(len(genome.layers()))] + ["head", "classifier"]


def profile_blocks(genome: Genome, target: LatencyTarget, warmup: int = DEFAULT_WARMUP,
                   repeats: int = DEFAULT_REPEATS, min_span_s: float = MIN_SPAN_S,
                   passes: int = PASSES) -> BlockProfile:
    """Time every part of ``genome`` at its own input shape and the whole network, on ``target``.

    The parts are cut from one network built with the target's MixConv implementation, so they hold
    the whole network's weights; each runs as its own model on the backend (exported alone for
    ``onnxruntime``). All are timed in ``passes`` interleaved passes, the quietest kept.
    """
    from mixnet import create_model

    check_target(target)
    impl = network_impl(target)
    env = environment(target, impl)
    network = create_model(genome, mixconv_impl=impl)
    cells = network.parts()
    cells = [cells.stem, *cells.blocks, cells.head, cells.classifier]
    costs = network_cost(genome, target.resolution).rows
    in_shapes = [row.in_shape for row in costs[:-1]] + [costs[-2].out_shape]  # the classifier pools
    builds = [lambda cell=cell: cell for cell in cells] + [lambda: network]
    shapes = [(target.batch,) + tuple(s) for s in in_shapes] + [target.input_shape]
    results = measure_cells(builds, shapes, [env] * len(builds), target, warmup, repeats, passes,
                            min_span_s=min_span_s)
    parts = [PartTiming(name, shape, r.median_ms, r.p90_ms, r.cv, row.madds * target.batch)
             for name, shape, row, r in zip(part_names(genome), in_shapes, costs, results)]
    return BlockProfile(genome, target, env, parts, results[-1].median_ms)


def write_chart(profile: BlockProfile, path: "str | Path") -> None:
    """A bar chart of each part's median with its ms/GMAdd written above, saved atomically as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from space.basics.atomic import atomic_path

    names = [p.part.replace("block ", "b") for p in profile.parts]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(names)), 4.0))
    bars = ax.bar(names, [p.median_ms for p in profile.parts], color="#4c72b0")
    for bar, part in zip(bars, profile.parts):
        rate = ms_per_gmadd(part.median_ms, part.madds)
        if rate is not None:
            ax.annotate(f"{rate:.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=6)
    t = profile.target
    ax.set_title(f"{profile.genome.key()} on {t.backend}/{t.device}, batch {t.batch} at {t.resolution}: "
                 f"parts {profile.parts_ms:.2f} ms, network {profile.whole_ms:.2f} ms "
                 "(numbers: ms per GMAdd)", fontsize=8)
    ax.set_ylabel("median latency (ms)")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
