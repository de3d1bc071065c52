"""``supernet check``: how well supernet scores rank genomes, in the same report as ``proxy check``.

MixNet-S and genomes sampled from the space are scored by K supernets trained at different seeds and
trained stand-alone with the reference recipe (reference runs that ``proxy check`` already made are
reused). The report gives supernet-to-supernet agreement (the seed-to-seed tau), supernet against
reference (Kendall tau, Spearman rho, top-third overlap) and the seconds per scored genome.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from space.basics.atomic import check_output, write_atomic
from space.basics.errors import UsageError
from space.search_space import GENOME_SAMPLINGS, SearchSpace

from ..accuracy_runs import Run, RunLog, data_digest, score_matrix, train_runs
from ..config import SearchConfig
from ..fidelity import binomial_se, fidelity, free_rankings
from ..proxy_check import (RUNS_NAME, SUPERNET_CHECK_FOLDER, agreement_lines, check_command, check_counts,
                           check_run_logs, genome_table, noise_sd_line, num, plot_check, sampled_genomes)
from ..proxy_data import plan_proxy_data, prepare_proxy_data, proxy_data_of
from ..recipes import check_reference_seeds, on_proxy_data, reference_seeded, reference_train_config
from .scoring import scorer_for
from .training import supernet_recipe, train_supernet, training_seconds


def seeded_supernet(cfg: SearchConfig, index: int) -> SearchConfig:
    """``cfg`` with its ``index``-th supernet: the recipe's seed plus ``index``, in its own folder
    (the first is the config's own supernet)."""
    if index == 0:
        return cfg
    base = supernet_recipe(cfg)
    section = cfg.supernet
    changed = dataclasses.replace(section, dir=section.dir.parent / f"{section.dir.name}_seed{base.seed + index}",
                                  overrides={**section.overrides, "seed": int(base.seed) + index})
    return dataclasses.replace(cfg, supernet=changed)


def supernet_check(cfg: SearchConfig, genomes: int = 12, supernets: int = 2, reference: "str | None" = None,
                   reference_seeds: int = 1, seed: int = 0, sampling: str = GENOME_SAMPLINGS[0],
                   out: "Path | None" = None, progress: bool = True,
                   train_fn: "Callable[..., Any] | None" = None) -> dict[str, Any]:
    """Train (or resume) ``supernets`` supernets and the reference runs, score, write and return the report.

    Everything is checked before any training: counts, space, data, recipes and the output folder.
    """
    check_counts(genomes, 1, reference_seeds)
    if supernets < 1:
        raise UsageError(f"--supernets {supernets} - must be an integer >= 1 (2 or more measure their agreement)")
    space = SearchSpace.from_yaml(cfg.space)
    cfg.supernet.spec_of(space)
    chosen = sampled_genomes(space, genomes, seed, sampling)
    configs = [seeded_supernet(cfg, i) for i in range(supernets)]
    recipes = [supernet_recipe(c) for c in configs]
    ref_recipe = reference_train_config(cfg, reference)
    check_reference_seeds(ref_recipe, reference_seeds)
    plan = plan_proxy_data(cfg.data)
    data = proxy_data_of(plan, cfg.out_dir)
    ref_recipe = on_proxy_data(ref_recipe, data)
    out = Path(out) if out is not None else cfg.out_dir / SUPERNET_CHECK_FOLDER
    check_output(out / RUNS_NAME)
    prepare_proxy_data(cfg.data, cfg.out_dir, plan)
    scores = np.zeros((len(chosen), supernets))
    train_seconds, score_seconds = [], []
    for i, (config, recipe) in enumerate(zip(configs, recipes)):
        train_supernet(config, progress=progress)
        train_seconds.append(training_seconds(config))
        scorer = scorer_for(config, data, recipe)
        scorer.score(chosen[0])  # compiles the scoring graphs once
        scored = scorer.scored
        started = time.perf_counter()
        scores[:, i] = [100 * scorer.score(g) for g in chosen]
        score_seconds.append((time.perf_counter() - started) / len(chosen))
    digest = data_digest(cfg.data, plan)
    runs = [Run(i, "reference", g, r, digest) for i, g in enumerate(chosen)
            for r in reference_seeded(ref_recipe, reference_seeds)]
    log = RunLog(out / RUNS_NAME, known=check_run_logs(cfg.out_dir))
    rows = train_runs(runs, log, data, train_fn, progress, desc="supernet check references")
    ref = score_matrix(rows, "reference", len(chosen))
    report = fidelity(scores, ref)
    report["supernet"] = report.pop("proxy")
    report.update(config=cfg.source, seed=seed, sampling=sampling, reference_recipe=reference, supernets=supernets,
                  holdout_images=scored,
                  binomial_se_points=100 * binomial_se(float(scores.mean()) / 100, scored),
                  supernet_mean_top1=float(scores.mean()), reference_mean_top1=float(ref.mean()),
                  seconds_per_genome=float(np.mean(score_seconds)), supernet_train_seconds=train_seconds,
                  supernet_epochs=int(recipes[0].epoch_size), reference_epochs=int(ref_recipe.epoch_size),
                  seconds_per_reference_run=float(rows.train_seconds.mean()))
    table = genome_table(chosen, scores, ref, space, name="supernet")
    report["free_rankings_tau"] = free_rankings({"params": table.params, "madds": table.madds}, ref)
    write_atomic(out / "genomes.csv", table.to_csv(index=False))
    write_atomic(out / "report.json", json.dumps(report, indent=1))
    plot_check(table, {**report, "proxy": report["supernet"]}, out / "supernet_check.png", name="supernet",
               scored=f"supernet top-1 (%), {report['supernet_epochs']} epochs x {supernets} supernet(s)")
    report["outputs"] = [str(out / f) for f in (RUNS_NAME, "genomes.csv", "report.json", "supernet_check.png")]
    return report


def describe(report: dict[str, Any]) -> str:
    """The report as a few lines of text."""
    s, r = report["supernet"], report["reference"]
    lines = [f"supernet check of {report['config']}: {report['genomes']} genomes, {report['supernets']} supernets "
             f"of {report['supernet_epochs']} epochs, reference {report['reference_epochs']} epochs x "
             f"{report['reference_seeds']} seed(s), {report['holdout_images']} held-out images (binomial s.e. "
             f"{report['binomial_se_points']:.1f} points)",
             f"  supernet: mean top-1 {report['supernet_mean_top1']:.1f}%  supernet-to-supernet Kendall tau "
             f"{num(s['seed_tau'])}  spread between genomes {num(s['genome_spread_sd'], '.1f')} points sd",
             f" reference: mean top-1 {report['reference_mean_top1']:.1f}%  spread between genomes "
             f"{num(r['genome_spread_sd'], '.1f')} points sd",
             *agreement_lines(report, "supernet"),
             noise_sd_line(s["paired_noise_sd"], "supernet", report,
                           check_command(report, "supernet", f"--supernets {report['supernets']}"),
                           "one supernet - run with --supernets 2 or more"),
             f"time: {report['seconds_per_genome']:.2f} s per scored genome; supernet training "
             + ", ".join(f"{t:.0f} s" for t in report["supernet_train_seconds"]) + " (their epochs in metrics.csv)"
             + f"; {report['seconds_per_reference_run']:.0f} s per reference run",
             "wrote " + ", ".join(report["outputs"])]
    return "\n".join(lines)
