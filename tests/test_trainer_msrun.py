"""Data-parallel training under msrun: 2 CPU workers over loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, free_port
from trainer import load_config, write_digits
from trainer.data import TrainData, scan_split
from trainer.transforms import SkipCounter


@pytest.mark.slow
def test_two_workers_train_identical_weights_on_disjoint_shards(tmp_path: Path) -> None:
    msrun = shutil.which("msrun")
    if msrun is None:
        pytest.skip("msrun is not installed")
    digits = write_digits(tmp_path / "digits", size=32)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run([msrun, "--worker_num", "2", "--local_worker_num", "2", "--master_port", str(free_port()),
                           "--join", "True", "--log_dir", str(tmp_path / "logs"), str(ROOT / "tests" / "msrun_worker.py"),
                           str(digits), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    logs = "\n".join(p.read_text()[-2000:] for p in sorted((tmp_path / "logs").glob("worker_*.log")))
    assert proc.returncode == 0, logs or proc.stderr[-2000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in reports] == [2, 2]
    assert reports[0]["weights_digest"] == reports[1]["weights_digest"]
    assert reports[0]["final_top1"] == reports[1]["final_top1"]
    shard0, shard1 = (set(r["shard"]) for r in reports)
    assert len(shard0) == len(shard1) == 128 and not shard0 & shard1
    cfg = load_config(ROOT / "configs" / "train" / "digits.yaml", {"data_dir": str(digits), "scale": [1.0, 1.0],
                                                                   "ratio": [1.0, 1.0], "batch_size": 1437})
    every = {hashlib.sha1(image.tobytes()).hexdigest()
             for images, _ in TrainData(cfg, scan_split(str(digits), "train", "t"), 10, 0, 1).batches(0, SkipCounter())
             for image in images}
    assert shard0 | shard1 <= every
    assert reports[0]["best_ckpt"] and reports[1]["best_ckpt"] is None and reports[1]["metrics_csv"] is None
    assert len((out / "ckpt" / "metrics.csv").read_text().splitlines()) == 3
