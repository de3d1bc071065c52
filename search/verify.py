"""``verify``: retrain the Pareto front and MixNet-S with the reference recipe at K seeds.

The step NAS papers do by hand: the proxy chose the front; the reference recipe (the longer
training the proxy stands for) says whether its genomes really differ from MixNet-S. Runs are
kept in ``verify_runs.csv`` (resumable); ``verified.csv`` and ``verified.png`` hold the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from space import parse_genome
from space.basics.errors import UsageError

from .accuracy_runs import Run, RunLog, data_digest, score_matrix, train_runs
from .config import SearchConfig
from .fidelity import paired_difference, verdict
from space.basics.atomic import check_output, write_atomic
from .proxy_check import check_run_logs
from .proxy_data import plan_proxy_data, prepare_proxy_data, proxy_data_of
from .ranking import kendall_tau
from .report import finish_plot, pareto_front, trials_frame
from .recipes import check_reference_seeds, on_proxy_data, reference_seeded, reference_train_config


def spread_along(front: pd.DataFrame, count: "int | None") -> pd.DataFrame:
    """At most ``count`` rows of ``front``, evenly spaced in latency order (the fastest and the slowest
    included); all of them when ``count`` is None or not smaller."""
    if count is None or len(front) <= count:
        return front
    ordered = front.sort_values("latency_ms").reset_index(drop=True)
    return ordered.iloc[sorted({round(i * (len(ordered) - 1) / max(count - 1, 1)) for i in range(count)})]


def candidates(cfg: SearchConfig, frame: "pd.DataFrame | None" = None) -> pd.DataFrame:
    """The study's Pareto front (``verify.max_genomes`` of it, spread along latency) plus its baseline trial
    (MixNet-S), by latency; ``frame``: the study's trials (read from its storage unless given)."""
    if frame is None:
        from .runner import open_study, quiet_optuna
        quiet_optuna()
        frame = trials_frame(open_study(cfg, create=False))
    front = spread_along(pareto_front(frame, cfg.goal.front_objectives), cfg.verify.max_genomes)
    done = frame[(frame.state == "COMPLETE") & frame.baseline]
    chosen = pd.concat([front.assign(pareto=True), done[~done.number.isin(front.number)].assign(pareto=False)])
    if chosen.empty:
        raise UsageError(f"study '{cfg.storage.study}' has no finished trials to verify")
    return chosen.drop_duplicates("genome_key").sort_values("latency_ms").reset_index(drop=True)


def verify(cfg: SearchConfig, seeds: "int | None" = None, reference: "str | None" = None,
           out: "Path | None" = None, progress: bool = True,
           train_fn: "Callable[..., Any] | None" = None) -> pd.DataFrame:
    """Retrain the front and MixNet-S (resuming finished runs); write and return ``verified.csv``'s table."""
    k = cfg.verify.seeds if seeds is None else seeds
    if k < 1:
        raise UsageError(f"--seeds {k} - must be an integer >= 1 (2 or more measure the noise)")
    recipe = reference_train_config(cfg, reference)
    check_reference_seeds(recipe, k)
    chosen = candidates(cfg)
    plan = plan_proxy_data(cfg.data)
    data = proxy_data_of(plan, cfg.out_dir)
    recipe = on_proxy_data(recipe, data)
    out = Path(out) if out is not None else cfg.out_dir
    check_output(out / "verified.csv")
    prepare_proxy_data(cfg.data, cfg.out_dir, plan)
    genomes = [parse_genome(g) for g in chosen.genome]
    digest = data_digest(cfg.data, plan)
    runs = [Run(i, "reference", g, r, digest) for i, g in enumerate(genomes) for r in reference_seeded(recipe, k)]
    log = RunLog(out / "verify_runs.csv", known=check_run_logs(cfg.out_dir))
    rows = train_runs(runs, log, data, train_fn, progress, desc="verify")
    scores = score_matrix(rows, "reference", len(genomes))
    table = verified_table(chosen, scores, data.n_holdout, int(recipe.epoch_size))
    write_atomic(out / "verified.csv", table.to_csv(index=False))
    plot_verified(table, out / "verified.png")
    return table


def verified_table(chosen: pd.DataFrame, scores: np.ndarray, n_images: int, epochs: int) -> pd.DataFrame:
    """Per genome: latency, the search's proxy top-1, the reference top-1 (mean, sd, seeds) and the
    paired difference from MixNet-S with its verdict (all in percent points)."""
    base = np.flatnonzero(chosen.baseline.to_numpy(dtype=bool))
    rows = []
    for i, trial in enumerate(chosen.itertuples()):
        row = {"trial": trial.number, "baseline": bool(trial.baseline), "pareto": bool(trial.pareto),
               "latency_ms": trial.latency_ms, "params": trial.params, "madds": trial.madds,
               "proxy_top1": 100 * trial.accuracy,
               "proxy_se": None if pd.isna(trial.accuracy_se) else 100 * trial.accuracy_se,
               "verified_top1": scores[i].mean(),
               "verified_sd": scores[i].std(ddof=1) if scores.shape[1] > 1 else None,
               "verified_seeds": " ".join(f"{v:.2f}" for v in scores[i]), "reference_epochs": epochs,
               "vs_mixnet_s": None, "vs_mixnet_s_se": None, "verdict": None, "genome": trial.genome}
        if len(base) and i != base[0]:
            diff, se = paired_difference(scores[i] / 100, scores[base[0]] / 100, n_images)
            row.update(vs_mixnet_s=100 * diff, vs_mixnet_s_se=100 * se, verdict=verdict(diff, se))
        rows.append(row)
    return pd.DataFrame(rows)


def plot_verified(table: pd.DataFrame, path: Path) -> None:
    """Reference top-1 (mean +- sd) against latency, the proxy's value beside it; written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.errorbar(table.latency_ms, table.verified_top1, yerr=table.verified_sd.fillna(0).to_numpy(dtype=float),
                fmt="o", c="tab:green", capsize=3, label="verified: reference recipe, mean +- sd")
    ax.scatter(table.latency_ms, table.proxy_top1, marker="o", facecolors="none", edgecolors="tab:blue",
               label="the search's top-1 (proxy or supernet)")
    base = table[table.baseline]
    if not base.empty:
        ax.scatter(base.latency_ms, base.verified_top1, s=180, marker="*", c="tab:red", zorder=5, label="MixNet-S")
    for row in table.itertuples():
        ax.annotate(str(row.trial), (row.latency_ms, row.verified_top1), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title("Pareto front and MixNet-S retrained with the reference recipe", fontsize=10)
    finish_plot(fig, ax, path)


def describe(table: pd.DataFrame) -> str:
    """The verified table as text, with the search score's rank agreement over these genomes (a proxy's or a
    supernet's top-1, as the trials were scored)."""
    lines = [f"{'trial':>6} {'latency ms':>11} {'search top-1':>12} {'verified top-1':>16} "
             f"{'vs MixNet-S (points)':>22}  note"]
    for row in table.itertuples():
        sd = "" if pd.isna(row.verified_sd) else f" +- {row.verified_sd:.1f}"
        versus = "" if pd.isna(row.verdict) else f"{row.vs_mixnet_s:+.1f} +- {row.vs_mixnet_s_se:.1f} {row.verdict}"
        note = ("MixNet-S (baseline)" if row.baseline else "") + (" Pareto" if row.pareto else "")
        lines.append(f"{row.trial:>6} {row.latency_ms:>11.2f} {row.proxy_top1:>11.2f}% {row.verified_top1:>9.2f}%{sd:<7}"
                     f" {versus:>22}  {note.strip()}")
    if len(table) >= 3:
        tau = kendall_tau(list(table.proxy_top1), list(table.verified_top1))
        lines.append(f"search score vs verified over these {len(table)} genomes: Kendall tau {tau:.2f}")
    return "\n".join(lines)
