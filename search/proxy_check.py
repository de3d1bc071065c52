"""``proxy check``: how well the proxy ranks genomes, measured as ``lut check`` measures the LUT.

MixNet-S (the space's skeleton) and genomes sampled from the space are trained with the proxy at
K paired seeds and with the reference recipe (the longer training the proxy stands for); the
report gives the proxy's seed-to-seed agreement, its noise against the spread between genomes, and
its agreement with the reference. Outputs: ``runs.csv`` (one row per training, resumable),
``genomes.csv``, ``report.json`` and ``proxy_check.png``.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from space import Genome
from space.cost import network_cost
from space.basics.errors import UsageError
from space.search_space import GENOME_SAMPLINGS, SearchSpace

from .accuracy_runs import Run, RunLog, data_digest, score_matrix, train_runs
from .config import SearchConfig
from .fidelity import binomial_se, fidelity, free_rankings
from space.basics.atomic import check_output, write_atomic
from .proxy_data import plan_proxy_data, prepare_proxy_data, proxy_data_of
from .report import finish_plot
from .recipes import (check_reference_seeds, on_proxy_data, proxy_train_config, reference_seeded,
                      reference_train_config, seeded)

MIN_GENOMES = 3
CHECK_FOLDER = "proxy_check"
SUPERNET_CHECK_FOLDER = "supernet_check"
RUNS_NAME = "runs.csv"
MAX_SAMPLING_TRIES = 1000


def sampled_genomes(space: SearchSpace, n: int, seed: int,
                    sampling: str = GENOME_SAMPLINGS[0]) -> list[Genome]:
    """The space's skeleton (MixNet-S for the default space) and ``n - 1`` other distinct genomes:
    uniformly random (``uniform``), or graded from the space's smallest genome to its largest
    (``spread``: levels 0 to 1 of ``SearchSpace.graded_genome``), the range of sizes a search's
    front spans, where uniform genomes all sit near the middle."""
    if sampling not in GENOME_SAMPLINGS:
        raise UsageError(f"--sampling {sampling} - must be one of {', '.join(GENOME_SAMPLINGS)}")
    rng = random.Random(seed)
    genomes = {space.skeleton.key(): space.skeleton}
    for slot in range(n - 1):
        for _ in range(MAX_SAMPLING_TRIES):
            g = (space.random_genome(rng) if sampling == "uniform"
                 else space.graded_genome(rng, slot / max(n - 2, 1)))
            if genomes.setdefault(g.key(), g) is g:
                break
        else:
            raise UsageError(f"--genomes {n} - the space '{space.name}' holds only {len(genomes)} distinct "
                             f"genomes{' at these sizes' if sampling == 'spread' else ''}")
    return list(genomes.values())


def check_counts(genomes: int, seeds: int, reference_seeds: int) -> None:
    """Raise a UsageError for a count the check cannot work with."""
    if genomes < MIN_GENOMES:
        raise UsageError(f"--genomes {genomes} - must be an integer >= {MIN_GENOMES} (rank agreement needs "
                         "at least three genomes)")
    if seeds < 1:
        raise UsageError(f"--seeds {seeds} - must be an integer >= 1 (2 or more measure the noise)")
    if reference_seeds < 1:
        raise UsageError(f"--reference-seeds {reference_seeds} - must be an integer >= 1")


def check_run_logs(out_dir: Path) -> tuple[Path, ...]:
    """The run logs of the fidelity checks in a search's ``out_dir`` (``proxy check``, ``supernet check``):
    a reference training either made is reused by the other and by ``verify``."""
    return tuple(out_dir / folder / RUNS_NAME for folder in (CHECK_FOLDER, SUPERNET_CHECK_FOLDER))


def copy_numbers(genomes: list[Genome]) -> list[int]:
    """For each genome, how many earlier entries of the list are the same genome."""
    copies: Counter[str] = Counter()
    numbers = []
    for g in genomes:
        numbers.append(copies[g.key()])
        copies[g.key()] += 1
    return numbers


def plan_runs(genomes: list[Genome], proxy_recipe: Any, reference: Any, seeds: int,
              reference_seeds: int, data: str) -> list[Run]:
    """Proxy runs of every genome first, then reference runs, all on the data of digest ``data``; all genomes
    share one seed set.

    A genome listed more than once is trained at fresh seeds for each copy, so copies of one
    genome measure the noise floor (a check of genomes that differ only by seed).
    """
    offsets = copy_numbers(genomes)
    runs = [Run(i, "proxy", g, r, data) for i, (g, copy) in enumerate(zip(genomes, offsets))
            for r in seeded(proxy_recipe.replace(seed=proxy_recipe.seed + copy * seeds), seeds)]
    return runs + [Run(i, "reference", g, r, data) for i, (g, copy) in enumerate(zip(genomes, offsets))
                   for r in reference_seeded(reference, reference_seeds, copy * reference_seeds)]


def proxy_check(cfg: SearchConfig, genomes: int = 12, seeds: int = 2, reference: "str | None" = None,
                reference_seeds: int = 1, seed: int = 0, sampling: str = GENOME_SAMPLINGS[0],
                explicit: "list[Genome] | None" = None,
                out: "Path | None" = None, progress: bool = True,
                train_fn: "Callable[..., Any] | None" = None) -> dict[str, Any]:
    """Run (or resume) the check of ``cfg``'s proxy; write its files and return the report.

    Everything is checked before any training: counts, space, data, both recipes and the output folder.
    """
    n = len(explicit) if explicit else genomes
    check_counts(n, seeds, reference_seeds)
    space = SearchSpace.from_yaml(cfg.space)
    chosen = list(explicit) if explicit else sampled_genomes(space, genomes, seed, sampling)
    proxy_recipe, ref_recipe = proxy_train_config(cfg), reference_train_config(cfg, reference)
    check_reference_seeds(ref_recipe, reference_seeds * (1 + max(copy_numbers(chosen))))
    plan = plan_proxy_data(cfg.data)
    data = proxy_data_of(plan, cfg.out_dir)
    proxy_recipe, ref_recipe = on_proxy_data(proxy_recipe, data), on_proxy_data(ref_recipe, data)
    out = Path(out) if out is not None else cfg.out_dir / CHECK_FOLDER
    check_output(out / RUNS_NAME)
    prepare_proxy_data(cfg.data, cfg.out_dir, plan)
    runs = plan_runs(chosen, proxy_recipe, ref_recipe, seeds, reference_seeds, data_digest(cfg.data, plan))
    rows = train_runs(runs, RunLog(out / RUNS_NAME, known=check_run_logs(cfg.out_dir)), data, train_fn, progress,
                      desc="proxy check")
    p, r = score_matrix(rows, "proxy", n), score_matrix(rows, "reference", n)
    report = fidelity(p, r)
    seconds = rows.groupby("role").train_seconds.mean()
    report.update(config=cfg.source, seed=seed, sampling="explicit" if explicit else sampling,
                  reference_recipe=reference, holdout_images=data.n_holdout,
                  binomial_se_points=100 * binomial_se(float(p.mean()) / 100, data.n_holdout),
                  proxy_mean_top1=float(p.mean()), reference_mean_top1=float(r.mean()),
                  seconds_per_proxy_trial=float(seconds["proxy"]) * seeds,
                  seconds_per_proxy_run=float(seconds["proxy"]),
                  seconds_per_reference_run=float(seconds["reference"]),
                  proxy_epochs=int(proxy_recipe.epoch_size), reference_epochs=int(ref_recipe.epoch_size))
    table = genome_table(chosen, p, r, space)
    report["free_rankings_tau"] = free_rankings({"params": table.params, "madds": table.madds}, r)
    write_atomic(out / "genomes.csv", table.to_csv(index=False))
    write_atomic(out / "report.json", json.dumps(report, indent=1))
    plot_check(table, report, out / "proxy_check.png")
    report["outputs"] = [str(out / f) for f in (RUNS_NAME, "genomes.csv", "report.json", "proxy_check.png")]
    return report


def genome_table(genomes: list[Genome], proxy: np.ndarray, reference: np.ndarray, space: SearchSpace,
                 name: str = "proxy") -> pd.DataFrame:
    """One row per genome: the scores' (``name``: proxy or supernet) and the reference's mean, sd and
    per-seed top-1 (percent), params, MAdds."""
    rows = []
    for i, g in enumerate(genomes):
        cost = network_cost(g, 224)
        rows.append({"genome_index": i, "skeleton": g.key() == space.skeleton.key(),
                     f"{name}_mean": proxy[i].mean(),
                     f"{name}_sd": proxy[i].std(ddof=1) if proxy.shape[1] > 1 else None,
                     f"{name}_seeds": " ".join(f"{v:.2f}" for v in proxy[i]),
                     "reference_mean": reference[i].mean(),
                     "reference_sd": reference[i].std(ddof=1) if reference.shape[1] > 1 else None,
                     "reference_seeds": " ".join(f"{v:.2f}" for v in reference[i]),
                     "params": cost.params, "madds": cost.madds, "genome": g.to_string()})
    return pd.DataFrame(rows)


def plot_check(table: pd.DataFrame, report: dict[str, Any], path: Path, name: str = "proxy",
               scored: "str | None" = None) -> None:
    """Scores (``name``: proxy or supernet; ``scored`` labels their axis) mean +- sd against reference
    mean +- sd, MixNet-S marked; written atomically."""

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.8), dpi=120)
    xerr = table.reference_sd.fillna(0).to_numpy(dtype=float)
    means = table[f"{name}_mean"]
    yerr = table[f"{name}_sd"].fillna(0).to_numpy(dtype=float)
    ax.errorbar(table.reference_mean, means, xerr=xerr, yerr=yerr, fmt="o", c="tab:blue",
                capsize=3, alpha=0.8, label="genomes (mean +- sd over seeds)")
    base = table[table.skeleton]
    if not base.empty:
        ax.scatter(base.reference_mean, base[f"{name}_mean"], s=180, marker="*", c="tab:red", zorder=5,
                   label="MixNet-S")
    for index, x, y in zip(table.genome_index, table.reference_mean, means):
        ax.annotate(str(index), (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    seed_tau = report["proxy"]["seed_tau"]
    low, high = report["kendall_tau_interval"]
    ax.set_title(f"{name} vs reference: Kendall tau {report['kendall_tau']:.2f} (90%: {low:.2f} to {high:.2f}), "
                 "seed-to-seed tau " + ("n/a" if seed_tau is None else f"{seed_tau:.2f}"), fontsize=10)
    ax.set_xlabel(f"reference top-1 (%), {report['reference_epochs']} epochs x {report['reference_seeds']} seed(s)")
    ax.set_ylabel(scored or f"proxy top-1 (%), {report['proxy_epochs']} epochs x {report['proxy_seeds']} seed(s)")
    finish_plot(fig, ax, path)


def num(value: "float | None", fmt: str = ".2f") -> str:
    """A report number as text (``n/a`` when it could not be measured)."""
    return "n/a" if value is None else format(value, fmt)


def agreement_lines(report: dict[str, Any], name: str) -> list[str]:
    """How ``name`` (proxy or supernet) ranks against the reference, with the tau's bootstrap interval,
    the reference's agreement with itself and the rankings that cost nothing (params, MAdds)."""
    low, high = report["kendall_tau_interval"]
    own = report["reference"]["seed_tau"]
    return [f"{name} vs reference: Kendall tau {report['kendall_tau']:.2f} (90% interval {low:.2f} to {high:.2f})  "
            f"Spearman rho {report['spearman_rho']:.2f}  top-third overlap {100 * report['top_third_overlap']:.0f}%",
            "  against the same reference: itself at another seed "
            + ("n/a (one seed)" if own is None else f"{own:.2f}") + ", rankings that cost nothing "
            + "  ".join(f"{key} {tau:.2f}" for key, tau in report["free_rankings_tau"].items())]


def check_command(report: dict[str, Any], action: str, count: str) -> str:
    """The command line that made ``report`` (``action``: proxy or supernet; ``count``: its own count flag)."""
    picks = (f"--genome SPEC (x{report['genomes']}, in genomes.csv)" if report["sampling"] == "explicit"
             else f"--genomes {report['genomes']} --seed {report['seed']} --sampling {report['sampling']}")
    reference = f" --reference {report['reference_recipe']}" if report.get("reference_recipe") else ""
    return (f"search.py {action} check --config {report['config']} {picks} {count} "
            f"--reference-seeds {report['reference_seeds']}{reference}")


def noise_sd_line(noise: "float | None", section: str, report: dict[str, Any], command: str, more: str) -> str:
    """The ``noise_sd`` line to paste under ``section:`` of the config (one run's noise in points) and what
    measured it; when the check could not measure it, what to run (``more``) to do so."""
    if noise is None:
        return f"{section}.noise_sd not measured: {more}"
    return f"noise_sd: {noise:.2f}   # paste under {section}: in {report['config']}; measured by: {command}"


def describe(report: dict[str, Any]) -> str:
    """The report as a few lines of text."""
    p, r = report["proxy"], report["reference"]
    lines = [f"proxy check of {report['config']}: {report['genomes']} genomes, proxy {report['proxy_epochs']} "
             f"epochs x {report['proxy_seeds']} seeds, reference {report['reference_epochs']} epochs x "
             f"{report['reference_seeds']} seed(s), {report['holdout_images']} held-out images "
             f"(binomial s.e. {report['binomial_se_points']:.1f} points)"]
    for name, part, mean in (("proxy", p, report["proxy_mean_top1"]), ("reference", r, report["reference_mean_top1"])):
        lines.append(f"{name:>10}: mean top-1 {mean:.1f}%  seed-to-seed Kendall tau {num(part['seed_tau'])}  "
                     f"run noise {num(part['run_noise_sd'], '.2f')} points sd  spread between genomes "
                     f"{num(part['genome_spread_sd'], '.1f')} points sd  (spread/noise {num(part['spread_to_noise'])})")
    lines += agreement_lines(report, "proxy")
    command = check_command(report, "proxy", f"--seeds {report['proxy_seeds']}")
    lines.append(noise_sd_line(p["run_noise_sd"], "proxy", report, command,
                               "one proxy seed per genome - run with --seeds 2 or more"))
    lines.append(f"time: {report['seconds_per_proxy_trial']:.0f} s per proxy trial ({report['proxy_seeds']} runs), "
                 f"{report['seconds_per_reference_run']:.0f} s per reference run")
    lines.append("wrote " + ", ".join(report["outputs"]))
    return "\n".join(lines)
