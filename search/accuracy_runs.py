"""Training genomes with a recipe at given seeds, one CSV row per run: the runs behind ``proxy check``,
``supernet check`` and ``verify``. Each finished run is written at once (atomically), so a re-run resumes.

A finished run is reused only for the same genome, role, seed, recipe (its device and MixConv implementation
included) and data (the images it trains on and the held-out images it is scored on); a row written without
one of these is never matched. Each row also records the implementation the network actually computed with."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from tqdm import tqdm

from space import Genome

from space.basics.atomic import write_atomic
from trainer.config_keys import COMPUTE_KEYS, SCORE_KEYS

from .proxy_data import Plan, ProxyData
from .recipes import trained_network
from .sections import DataSection

RUN_COLUMNS = ["genome_index", "role", "seed", "accuracy", "holdout_images", "train_seconds", "recipe", "data",
               "mixconv_impl", "genome_key", "genome"]


def _digest(value: Any) -> str:
    """A short hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def recipe_digest(train_cfg: Any) -> str:
    """A short hash of the settings that shape a run's weights and its measured top-1, and of the device and
    MixConv implementation it computes with; seed left out (it is a column)."""
    settings = {**train_cfg.run_settings(), **{k: train_cfg[k] for k in SCORE_KEYS + COMPUTE_KEYS}}
    return _digest({k: v for k, v in settings.items() if k != "seed"})


def data_digest(data: DataSection, plan: Plan) -> str:
    """A short hash of a run's data: the search config's ``data`` section (source, folder, image size, classes,
    held-out fraction, split seed) and the split it makes (every training and held-out image, by file)."""
    return _digest({"data": asdict(data), "split": plan})


@dataclass(frozen=True)
class Run:
    """One training: the deployed genome (its position in the check), a role, the seeded recipe and the
    ``data_digest`` of its data."""

    index: int
    role: str
    genome: Genome
    recipe: Any
    data: str

    def key(self) -> tuple[str, str, int, str, str]:
        """What identifies a finished run in the log."""
        return (self.genome.key(), self.role, int(self.recipe.seed), recipe_digest(self.recipe), self.data)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a run log (none when the file does not exist)."""
    return pd.read_csv(path).to_dict("records") if path.is_file() else []


class RunLog:
    """The CSV of finished runs; rows of other recipes or data (or without a data digest) are kept but never
    matched.

    ``known`` names other run logs (read only) whose finished runs count too: a verification
    reuses a reference training that ``proxy check`` already ran.
    """

    def __init__(self, path: Path, known: "tuple[Path, ...]" = ()) -> None:
        self.path = path
        self.rows = _read_rows(path)
        self.known = [row for other in known for row in _read_rows(other)]

    def find(self, run: Run) -> "dict[str, Any] | None":
        """The logged row of ``run``, if it finished before (here or in a known log)."""
        for row in self.rows + self.known:
            if (row["genome_key"], row["role"], int(row["seed"]), row["recipe"], row.get("data")) == run.key():
                return row
        return None

    def add(self, row: dict[str, Any]) -> None:
        """Append one finished run and rewrite the file atomically."""
        self.rows.append(row)
        write_atomic(self.path, pd.DataFrame(self.rows, columns=RUN_COLUMNS).to_csv(index=False))


def train_runs(runs: list[Run], log: RunLog, proxy: ProxyData, train_fn: "Callable[..., Any] | None" = None,
               progress: bool = True, desc: str = "training runs") -> pd.DataFrame:
    """Train every run not yet in ``log`` (progress bar with rate and ETA); all rows of ``runs``."""
    if train_fn is None:
        from trainer import train as train_fn
    pending = [r for r in runs if log.find(r) is None]
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc=desc, unit="run", dynamic_ncols=True,
               disable=not progress)
    try:
        for run in pending:
            bar.set_postfix_str(f"genome {run.index} {run.role} seed {run.recipe.seed}")
            network = trained_network(run.genome, run.recipe, proxy.num_classes)
            result = train_fn(run.recipe, network, progress=False, save_checkpoints=False)
            key, role, seed, digest, data = run.key()
            log.add({"genome_index": run.index, "role": role, "seed": seed,
                     "accuracy": float(result.final_top1) / 100.0, "holdout_images": proxy.n_holdout,
                     "train_seconds": round(float(result.seconds), 2), "recipe": digest, "data": data,
                     "mixconv_impl": result.mixconv_impl, "genome_key": key, "genome": run.genome.to_string()})
            bar.update()
    finally:
        bar.close()
    return pd.DataFrame([dict(log.find(r), genome_index=r.index) for r in runs], columns=RUN_COLUMNS)


def score_matrix(rows: pd.DataFrame, role: str, n_genomes: int) -> "Any":
    """Top-1 in percent as a genomes x seeds array for one role (seeds in increasing order)."""
    mine = rows[rows.role == role].sort_values(["genome_index", "seed"])
    return (mine.accuracy.to_numpy(dtype=float) * 100).reshape(n_genomes, -1)
