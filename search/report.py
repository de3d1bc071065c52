"""Search outputs from any storage: trials.csv, pareto.csv, pareto.png, best/*.yaml and a summary."""

from __future__ import annotations

import itertools
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from space.basics.atomic import atomic_path
from space import parse_genome
from space.codecs import genome_to_yaml

from .fidelity import BEYOND_NOISE_Z, paired_difference, unpaired_difference, verdict
from space.basics.filelock import file_lock
from .goal import with_latency
from .pareto import non_domination_ranks
from .record import TrialRecord, has_genome

COLUMNS = ["number", "state", "genome", "genome_key", "accuracy", "accuracy_se", "accuracy_seeds", "holdout_images",
           "noise_sd", "accuracy_source", "latency_ms", "params", "madds",
           "feasible", "baseline", "reused_from", "pruned_at_epoch", "intermediate_accuracy", "train_seconds",
           "score_seconds", "latency_seconds", "duration_s", "worker", "device", "error", "proxy_genome"]
TRAIN_CONFIG = "configs/train/mixnet_s.yaml"
VERIFIED = "verified.csv"
VERIFY_COMMAND = "python search.py verify --config SEARCH_CONFIG.yaml"
QUALIFIES = f"verified as more accurate than MixNet-S or within noise of it ({VERIFIED}, {BEYOND_NOISE_Z:g} s.e.)"
SHORT_VERDICT = {"better": "better", "worse": "worse", "indistinguishable": "within noise",
                 "unknown": "no verdict"}
VERIFY_ADVICE = "choose by latency, then run 'search.py verify' (it retrains them with the reference recipe)"


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial that sampled a genome (surplus stop-markers left out)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not has_genome(t):
            continue
        record = asdict(TrialRecord.from_trial(t))
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        rows.append({**{c: record.get(c) for c in COLUMNS}, "number": t.number, "state": t.state.name,
                     "duration_s": duration})
    return pd.DataFrame(rows, columns=COLUMNS)


def pareto_front(frame: pd.DataFrame, objectives: list[str]) -> pd.DataFrame:
    """Non-dominated finished, feasible, distinct genomes (accuracy maximized, the rest minimized)."""
    done = frame[(frame.state == "COMPLETE") & (frame.feasible == True)]  # noqa: E712 - pandas mask
    done = done[done.reused_from.isna()].drop_duplicates("genome_key")
    if done.empty:
        return done
    signs = np.array([-1.0 if m == "accuracy" else 1.0 for m in objectives])
    points = done[objectives].to_numpy(dtype=float) * signs
    keep = non_domination_ranks(points) == 0
    return done[keep].sort_values("latency_ms" if "latency_ms" in objectives else objectives[0])


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV atomically."""
    with atomic_path(path, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)


def _error_bar(rows: pd.DataFrame) -> np.ndarray:
    """One standard error of each row's accuracy, in points (0 where a trial has none)."""
    return rows.accuracy_se.fillna(0.0).to_numpy(dtype=float) * 100


def plot_front(frame: pd.DataFrame, front: pd.DataFrame, path: Path, title: str) -> None:
    """All trials, the front and the baseline on accuracy vs latency; written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = frame[frame.state == "COMPLETE"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    feasible = done[done.feasible == True]  # noqa: E712 - pandas mask
    infeasible = done[done.feasible == False]  # noqa: E712 - pandas mask
    ax.errorbar(feasible.latency_ms, feasible.accuracy * 100, yerr=_error_bar(feasible), fmt="o", ms=4,
                c="tab:blue", alpha=0.6, elinewidth=1, capsize=2, label="trials (+-1 s.e.)")
    if not infeasible.empty:
        ax.scatter(infeasible.latency_ms, infeasible.accuracy * 100, s=22, c="tab:gray", marker="x",
                   label="over budget (not trained)")
    if not front.empty:
        ax.errorbar(front.latency_ms, front.accuracy * 100, yerr=_error_bar(front), fmt="-o", c="tab:orange",
                    ms=6, capsize=3, label="Pareto front")
    base = done[done.baseline]
    if not base.empty:
        ax.errorbar(base.latency_ms, base.accuracy * 100, yerr=_error_bar(base), fmt="*", ms=14, c="tab:red",
                    capsize=3, zorder=5, label="MixNet-S (baseline)")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title(title)
    finish_plot(fig, ax, path)


def finish_plot(fig: "Any", ax: "Any", path: Path) -> None:
    """Grid, legend and layout of an accuracy plot, saved to ``path`` atomically (temp file, rename)."""
    import matplotlib.pyplot as plt
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _write_best(front: pd.DataFrame, best_dir: Path) -> list[Path]:
    """One genome YAML per Pareto point, replacing the folder atomically."""
    paths = []
    with atomic_path(best_dir, suffix="", folder=True) as tmp:
        for row in front.itertuples():
            name = f"trial_{row.number:04d}.yaml"
            se = "" if pd.isna(row.accuracy_se) else f" +- {row.accuracy_se:.4f} (s.e.)"
            head = (f"# trial {row.number}: held-out top-1 {row.accuracy:.4f}{se}, latency {row.latency_ms:.2f} ms, "
                    f"{int(row.params):,} params, {int(row.madds):,} MAdds\n")
            (tmp / name).write_text(head + genome_to_yaml(parse_genome(row.genome)))
            paths.append(best_dir / name)
    return paths


def write_outputs(study: optuna.Study, out_dir: Path, objectives: list[str]) -> pd.DataFrame:
    """Write every output file of a study into ``out_dir``; return the Pareto front."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study)
    front = pareto_front(frame, with_latency(objectives))
    from trainer.checkpointing import remove_stale_temporaries  # imports MindSpore: on first use only
    with file_lock(out_dir / ".outputs.lock"):
        remove_stale_temporaries(out_dir)  # what a writer killed mid-write left
        _write_csv(frame, out_dir / "trials.csv")
        _write_csv(front, out_dir / "pareto.csv")
        plot_front(frame, front, out_dir / "pareto.png", f"{study.study_name}: accuracy vs latency")
        _write_best(front, out_dir / "best")
    return front


def seeds_of(row: "pd.Series | tuple") -> list[float]:
    """A trial's per-seed held-out accuracies (its single accuracy for trials stored without them)."""
    seeds = getattr(row, "accuracy_seeds", None)
    return list(seeds) if isinstance(seeds, (list, tuple)) and seeds else [float(row.accuracy)]


def noise_of(row: "pd.Series | tuple") -> "float | None":
    """The stated one-run training noise a trial was scored with (a fraction), if any."""
    noise = getattr(row, "noise_sd", None)
    return None if noise is None or pd.isna(noise) else float(noise)


def difference(row: "pd.Series | tuple", other: "pd.Series | tuple") -> tuple[float, "float | None", str]:
    """``row``'s accuracy minus ``other``'s in points, its standard error (None: unknown) and the verdict.

    Trials with as many seeds as each other are compared seed by seed (:func:`paired_difference`, with
    ``other``'s stated noise for one seed); otherwise their means are (:func:`unpaired_difference`, each
    with its own stated noise).
    """
    n = int(getattr(other, "holdout_images", 0) or getattr(row, "holdout_images", 0) or 0)
    a, b = seeds_of(row), seeds_of(other)
    if len(a) == len(b):
        diff, se = paired_difference(a, b, n, noise_of(other))
    else:
        diff, se = unpaired_difference(a, b, n, noise_of(row), noise_of(other))
    return 100 * diff, None if se is None else 100 * se, verdict(diff, se)


def failure_line(frame: pd.DataFrame) -> "str | None":
    """How many trials failed and their most common error (None when none failed)."""
    failed = frame[frame.state == "FAIL"]
    if failed.empty:
        return None
    reasons = failed.error.fillna("no error recorded").value_counts()
    return (f"{len(failed)} failed trial{'s' if len(failed) > 1 else ''}; most common error "
            f"({reasons.iloc[0]} of {len(failed)}): {reasons.index[0]}")


def within_noise_line(front: list, baseline: "Any | None") -> "str | None":
    """A plain statement when the accuracy measure cannot order the front: its genomes (with MixNet-S when it
    is not on the front) all within noise of one another, or none of them apart from MixNet-S beyond noise."""
    count = f"{len(front)} front genome{'s' if len(front) > 1 else ''}"
    groups = [(front, "")]
    if baseline is not None and baseline.number not in {r.number for r in front}:
        groups.insert(0, (front + [baseline], " and MixNet-S"))
    for group, and_base in groups:
        pairs = [difference(a, b) for a, b in itertools.combinations(group, 2)]
        if pairs and all(word == "indistinguishable" for *_, word in pairs):
            band = BEYOND_NOISE_Z * max(se for _, se, _ in pairs)
            return (f"The {count}{and_base} are within noise of one another (+-{band:.1f} points): the accuracy "
                    f"measure cannot order them; {VERIFY_ADVICE}")
    others = [r for r in front if not r.baseline]
    if baseline is not None and others and all(difference(r, baseline)[2] == "indistinguishable" for r in others):
        return (f"None of the {len(others)} front genome{'s' if len(others) > 1 else ''} differs from MixNet-S "
                f"beyond noise: the accuracy measure cannot tell them from it; {VERIFY_ADVICE}")
    return None


def summary(frame: pd.DataFrame, front: pd.DataFrame, out_dir: Path, verify_command: str = VERIFY_COMMAND) -> str:
    """The terminal summary: counts (failed trials with their most common error), the front with error bars and
    a verdict against the baseline, whether the accuracy measure can order the front, and the next step
    (:func:`next_step`; ``verify_command``: how to verify this search)."""
    done = frame[frame.state == "COMPLETE"]
    pruned = frame[frame.pruned_at_epoch.notna()]
    rungs = sorted(set(pruned.pruned_at_epoch.astype(int)))
    stopped = (f", and {len(pruned)} stopped by the pruner (at epoch{'s' if len(rungs) > 1 else ''} "
               + "/".join(map(str, rungs)) + ")") if len(pruned) else ""
    lines = [f"{len(done)} finished trials ({int((done.reused_from.notna()).sum())} reused, "
             f"{int((done.feasible == False).sum())} over budget){stopped}; outputs in {out_dir}"]  # noqa: E712
    failures = failure_line(frame)
    if failures is not None:
        lines.append(failures)
    lines.append(f"{'trial':>6} {'top-1 +- s.e.':>15} {'latency ms':>11} {'params':>10} {'MAdds':>8}  "
                 f"{'vs MixNet-S (points)':>24}  note")
    base = done[done.baseline]
    baseline = next(base.itertuples()) if not base.empty else None
    shown = pd.concat([front, base[~base.number.isin(front.number)]])
    verdicts: dict[str, list[int]] = {word: [] for word in SHORT_VERDICT}
    for row in shown.itertuples():
        note = ("MixNet-S (baseline)" if row.baseline else "") + (" Pareto" if row.number in set(front.number) else "")
        se = 0.0 if pd.isna(row.accuracy_se) else row.accuracy_se
        versus = ""
        if baseline is not None and not row.baseline:
            diff, diff_se, word = difference(row, baseline)
            verdicts[word].append(row.number)
            versus = f"{diff:+.1f} +- {'?' if diff_se is None else format(diff_se, '.1f')} {SHORT_VERDICT[word]}"
        lines.append(f"{row.number:>6} {row.accuracy * 100:>7.2f} +- {se * 100:4.1f} {row.latency_ms:>11.2f} "
                     f"{int(row.params):>10,} {row.madds / 1e6:>7.1f}M  {versus:>24}  {note.strip()}")
    if baseline is not None and len(shown) > 1:
        scored = "accuracy_source" in shown and bool((shown.accuracy_source == "supernet").any())
        lines.append(verdict_line(verdicts, len(seeds_of(baseline)) > 1 or noise_of(baseline) is not None, scored))
    plain = within_noise_line(list(front.itertuples()), baseline)
    if plain is not None:
        lines.append(plain)
    if not front.empty:
        lines += next_step(out_dir, verify_command)
    return "\n".join(lines)


def next_step(out_dir: Path, verify_command: str) -> list[str]:
    """Two lines: what to do next and its command. Before ``verify`` has written ``out_dir/verified.csv``,
    ``verify_command``; after, training on ImageNet the fastest front genome (a ``best/`` file) that ``QUALIFIES``,
    or MixNet-S itself when none does."""
    if not (out_dir / VERIFIED).is_file():
        return [f"next: retrain the front and MixNet-S with the reference recipe; once {VERIFIED} is in {out_dir}, "
                "this summary names the genome to train:", f"  {verify_command}"]
    table = pd.read_csv(out_dir / VERIFIED)
    fit = table[~table.baseline.astype(bool) & table.verdict.isin(["better", "indistinguishable"])]
    files = [out_dir / "best" / f"trial_{int(t):04d}.yaml" for t in fit.sort_values("latency_ms").trial]
    chosen = next((f for f in files if f.is_file()), None)
    train = f"  python search.py train --config {TRAIN_CONFIG}"
    if chosen is None:
        return [f"no front genome is {QUALIFIES}: train MixNet-S itself, with MindCV's ImageNet recipe:",
                f"{train} --data_dir /path/to/imagenet"]
    return [f"train the fastest front genome {QUALIFIES}, with MindCV's ImageNet recipe:",
            f"{train} --genome {chosen} --data_dir /path/to/imagenet"]


def verdict_line(verdicts: dict[str, list[int]], noise_known: bool, supernet: bool = False) -> str:
    """One sentence: which front genomes beat MixNet-S beyond noise, which are worse, which cannot be told apart,
    which have no verdict (and, unless ``noise_known``, what the errors leave out: a proxy's training noise, a
    supernet's)."""
    def trials(numbers: list[int]) -> str:
        return ", ".join(map(str, numbers)) if numbers else "none"
    line = (f"against MixNet-S (beyond {BEYOND_NOISE_Z:g} s.e.): more accurate: trials {trials(verdicts['better'])}; "
            f"less accurate: {trials(verdicts['worse'])}; indistinguishable: {trials(verdicts['indistinguishable'])}")
    if verdicts["unknown"]:
        line += (f"; no verdict (one seed on one side and no stated noise_sd): {trials(verdicts['unknown'])}")
    if supernet and noise_known:
        line += ("\n  (supernet scores: the errors hold the held-out sampling error and supernet.noise_sd, not the "
                 "supernet's bias between genomes - 'search.py verify' retrains the front)")
    elif supernet:
        line += ("\n  (supernet scores: the errors hold only the held-out sampling error, not the supernet's training "
                 "noise - measure it with 'search.py supernet check' and set supernet.noise_sd; 'search.py verify' "
                 "retrains the front)")
    elif not noise_known:
        line += ("\n  (one proxy seed per genome and no proxy.noise_sd: the errors hold only the held-out "
                 "sampling error, not the training noise - measure it with 'search.py proxy check', or set "
                 "proxy.seeds >= 2)")
    return line
