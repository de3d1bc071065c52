"""One msrun worker of the distributed tests: train, then report this rank's shard and weights; or train
the supernet of a search config, logging the choice each step selected.

Usage (under msrun): msrun_worker.py DATA_DIR OUT_DIR
                     msrun_worker.py supernet SEARCH_CONFIG OUT_DIR [KILL_STEP]
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixnet.quiet import quiet_mindspore  # noqa: E402

quiet_mindspore()

from trainer import load_config, train  # noqa: E402
from trainer.data import TrainData, scan_split  # noqa: E402
from trainer.transforms import SkipCounter  # noqa: E402

TINY = ("stem8_head32_w1_d0.2_nc10,r1_k3_a1_p1_s2_e1_i8_o8_re,"
        "r1_k3.5_a1_p1_s2_e3_i8_o16_se0.25_sw_sesw")


def main(data_dir: str, out_dir: str) -> None:
    """Train one short data-parallel run, then write rank<r>.json with the shard's image hashes."""
    from mindspore.communication import get_group_size, get_rank
    recipe = Path(__file__).resolve().parents[1] / "configs" / "train" / "digits.yaml"
    cfg = load_config(recipe, {"data_dir": data_dir, "ckpt_save_dir": str(Path(out_dir) / "ckpt"), "genome": TINY,
                               "width": None, "distribute": True, "epoch_size": 2, "num_samples": 256,
                               "batch_size": 32, "num_parallel_workers": 1, "ema": True})
    result = train(cfg, progress=False)
    rank, world = get_rank(), get_group_size()
    plain = cfg.replace(scale=[1.0, 1.0], ratio=[1.0, 1.0])
    data = TrainData(plain, scan_split(data_dir, "train", "train_split"), 10, rank, world)
    hashes = [hashlib.sha1(image.tobytes()).hexdigest() for images, _ in data.batches(0, SkipCounter())
              for image in images]
    report = dict(asdict(result), rank=rank, world=world, shard=hashes,
                  metrics_csv=str(result.metrics_csv) if result.metrics_csv else None,
                  best_ckpt=str(result.best_ckpt) if result.best_ckpt else None)
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(report))


def choice_digest(net: Any) -> str:
    """SHA-256 of the parameters that hold a supernet's current choice (neither trained nor BN statistics).

    ``meta`` (the C++ kernels' copy of the kernel sizes the taps already hold) is left out: reading it on
    every rank between steps made the evaluation network's first compile fail under msrun (MindSpore 2.10).
    """
    digest = hashlib.sha256()
    for p in sorted(net.get_parameters(), key=lambda q: q.name):
        if not p.requires_grad and "moving_" not in p.name and not p.name.endswith(".meta"):
            digest.update(p.name.encode())
            digest.update(p.asnumpy().tobytes())
    return digest.hexdigest()


class StepLog:
    """The supernet's networks, each step's selected choice appended to ``path`` as "STEP DIGEST"; rank 1
    kills itself (SIGKILL) right after selecting step ``kill_step``."""

    def __init__(self, inner: Any, path: Path, kill_step: "int | None") -> None:
        self.inner, self.path, self.kill_step = inner, path, kill_step
        self.net: Any = None

    def build(self, genome: Any, cfg: Any) -> Any:
        """The supernet's network."""
        return self.inner.build(genome, cfg)

    def before_step(self, net: Any, step: int) -> None:
        """Select, log, and maybe die."""
        self.inner.before_step(net, step)
        self.net = net
        with self.path.open("a") as f:
            f.write(f"{step} {choice_digest(net)}\n")
        if step == self.kill_step and self.inner.ranks.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    def before_validation(self, net: Any) -> None:
        """The supernet's choice for validation."""
        self.inner.before_validation(net)


def train_logged(config: str, out_dir: Path, kill_step: "int | None" = None) -> tuple[Any, StepLog]:
    """Train the supernet of ``config`` through ``StepLog`` (log: OUT_DIR/rank<r>.steps)."""
    from search.config import load_search_config
    from search.supernet.training import train_supernet
    logs: list[StepLog] = []

    def logged(recipe: Any, genome: Any, networks: Any, **kwargs: Any) -> Any:
        logs.append(StepLog(networks, out_dir / f"rank{networks.ranks.rank}.steps", kill_step))
        return train(recipe, genome, networks=logs[0], **kwargs)

    result = train_supernet(load_search_config(config), progress=True, train_fn=logged)
    return result, logs[0]


def disagreement(log: StepLog) -> str:
    """The error of a step at which rank 1's sampler (at another seed) chooses another genome than rank 0's."""
    from search.supernet.training import SupernetNetworks
    from space.basics.errors import UsageError
    mine = log.inner
    other = replace(mine.sampler, seed=mine.sampler.seed + 1)
    step = next(s for s in range(100) if other.genome(s).to_string() != mine.sampler.genome(s).to_string())
    sampler = other if mine.ranks.rank == 1 else mine.sampler
    try:
        SupernetNetworks(mine.space, sampler, mine.section, mine.ranks).before_step(log.net, step)
    except UsageError as exc:
        return str(exc)
    return ""


def supernet(config: str, out_dir: str, kill_step: "int | None") -> None:
    """Train the supernet, then write rank<r>.json: its weights digest and the disagreement's error."""
    out = Path(out_dir)
    result, log = train_logged(config, out, kill_step)
    report = {"rank": log.inner.ranks.rank, "world": log.inner.ranks.world, "weights_digest": result.weights_digest,
              "disagreement": disagreement(log)}
    (out / f"rank{report['rank']}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "supernet":
        supernet(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        main(sys.argv[1], sys.argv[2])
