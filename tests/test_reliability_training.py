"""Training killed with SIGKILL mid-epoch and mid-checkpoint-write, then re-run: it resumes exactly.

Each run is ``search.py train`` in its own process, killed for real; the re-run is the same command.
Afterwards every checkpoint file loads, no temporary file is left, the metrics CSV lists each epoch
once, and the final weights equal those of a run that was never interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_cli
from mixnet.checkpoint import read_checkpoint
from test_trainer_loop import max_difference
from trainer import write_digits

# Wide 1x1 layers at a small resolution: cheap steps, but checkpoints of several megabytes whose
# writing takes long enough to be caught in the middle.
WIDE = ("stem16_head2048_w1_d0.2_nc10,r1_k3_a1_p1_s2_e1_i16_o16_re,"
        "r1_k3.5_a1_p1_s2_e6_i16_o256_re")
EPOCHS = 4
STEPS = 6
RECIPE = ROOT / "configs" / "train" / "digits.yaml"


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits tree at 32 px."""
    return write_digits(tmp_path_factory.mktemp("data") / "digits", size=32)


def train_args(digits: Path, out: Path) -> list[str]:
    """``search.py train`` arguments of a 4-epoch run with EMA, momentum and per-step log lines."""
    settings = {"data_dir": digits, "ckpt_save_dir": out, "genome": WIDE, "width": "null", "epoch_size": EPOCHS,
                "num_samples": 32 * STEPS, "batch_size": 32, "opt": "momentum", "lr": 0.05, "warmup_epochs": 1,
                "ema": True, "ema_decay": 0.9, "keep_checkpoint_max": 2, "log_interval": 1}
    return ["train", "-c", str(RECIPE)] + [item for k, v in settings.items() for item in (f"--{k}", str(v))]


def start(args: list[str]) -> subprocess.Popen:
    """The training command in a process of its own, its progress lines on a pipe."""
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "search.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL and reap."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def epochs_in_metrics(out: Path) -> list[int]:
    """The epochs listed in ``metrics.csv``, in file order."""
    return pd.read_csv(out / "metrics.csv")["epoch"].tolist()


def check_folder(out: Path) -> list[int]:
    """Every checkpoint loads and no temporary file is left; returns the epochs of the epoch checkpoints."""
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    epochs = []
    for path in sorted(out.glob("*.ckpt")):
        params = read_checkpoint(path)
        assert "classifier.weight" in params
        if path.name != "best.ckpt":
            epochs.append(int(params["epoch_num"].asnumpy()))
    return sorted(epochs)


def final_checkpoint(out: Path) -> Path:
    """The last epoch's checkpoint."""
    (path,) = out.glob(f"*-{EPOCHS}_{STEPS}.ckpt")
    return path


@pytest.fixture(scope="module")
def uninterrupted(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run, never killed."""
    out = tmp_path_factory.mktemp("straight")
    proc = run_cli(*train_args(digits, out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def rerun_and_compare(digits: Path, out: Path, uninterrupted: Path, resumed_after: int) -> None:
    """The same command again: it resumes after ``resumed_after`` epochs and ends where the straight run did."""
    proc = run_cli(*train_args(digits, out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"resuming after epoch {resumed_after}" in proc.stderr
    assert epochs_in_metrics(out) == list(range(1, EPOCHS + 1))
    assert check_folder(out) == [EPOCHS - 1, EPOCHS]
    assert max_difference(final_checkpoint(uninterrupted), final_checkpoint(out)) < 1e-5


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_from_the_last_checkpoint(digits: Path, uninterrupted: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start(train_args(digits, out))
    marker = f"epoch 3/{EPOCHS} step 3/{STEPS} "
    for line in proc.stderr:
        if marker in line:
            kill(proc)
            break
    else:
        raise AssertionError(f"the run ended before '{marker}' (exit {proc.wait()})")
    assert check_folder(out) == [1, 2]
    assert epochs_in_metrics(out) == [1, 2]
    rerun_and_compare(digits, out, uninterrupted, resumed_after=2)


def kill_while_writing(digits: Path, out: Path, first: Path) -> bool:
    """Start the run and SIGKILL it the moment a checkpoint's temporary file is seen after ``first``
    exists; True when the kill left the half-written file behind (the write may win the race)."""
    proc = start(train_args(digits, out))
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:
        if first.exists() and any(".tmp" in p.name for p in os.scandir(out)):
            break
        time.sleep(0.0002)
    kill(proc)
    return any(".tmp" in p.name for p in out.iterdir())


@pytest.mark.slow
def test_training_killed_while_writing_a_checkpoint(digits: Path, uninterrupted: Path, tmp_path: Path) -> None:
    first_name = f"{final_checkpoint(uninterrupted).name.rsplit('-', 1)[0]}-1_{STEPS}.ckpt"
    for attempt in range(4):
        out = tmp_path / f"run{attempt}"
        if kill_while_writing(digits, out, out / first_name):
            break
    else:
        raise AssertionError("no checkpoint write after epoch 1 was caught in the middle in 4 runs")
    kept = [int(read_checkpoint(p)["epoch_num"].asnumpy()) for p in out.glob("*.ckpt")
            if p.name != "best.ckpt" and ".tmp" not in p.name]   # the half-written file is not a checkpoint
    last = max(kept)
    assert last >= 1 and epochs_in_metrics(out) in (list(range(1, last + 1)), list(range(1, last + 2)))
    rerun_and_compare(digits, out, uninterrupted, resumed_after=last)
