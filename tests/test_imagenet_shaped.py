"""The production weight-sharing config (configs/search/imagenet_supernet.yaml) end to end on an ImageNet-shaped
tree, its four commands run as docs/production.md gives them: the supernet trained data-parallel under msrun,
the space's latency table, the search with one worker per device, and verify.

Only sizes change, and the devices and the latency target to what this host has: 4 classes of 10 JPEGs at
64 px (one colour a class), the proxy recipe (MindCV's MixNet-S, mixed precision O3 included) one epoch at
64 px in batches of 8, the 16-genome tiny space and its latency table on ONNX Runtime, 4 trials on CPU
devices 0 and 1, verify of one front genome at one seed. The tiny space rather than the two-genome pair
space: a worker whose every genome is already in the study reuses results and scores on no device, and
with two genomes one of the two workers regularly does; with 16, each worker's first trial is a new genome
(the baseline, or its first draw).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import ROOT, free_port
from search.latency.lut import LatencyTable
from space import parse_genome

CONFIG = ROOT / "configs" / "search" / "imagenet_supernet.yaml"
SPACE = ROOT / "tests" / "data" / "tiny_space.yaml"
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40))
TRAIN_IMAGES, VAL_IMAGES, SIZE = 10, 2, 64
HOLDOUT, BATCH, SCORE_IMAGES = 0.2, 8, 6
RANKS = 2
N_HOLDOUT = len(COLOURS) * round(TRAIN_IMAGES * HOLDOUT)
N_TRAIN = len(COLOURS) * TRAIN_IMAGES - N_HOLDOUT


def write_tree(root: Path) -> Path:
    """An ImageFolder tree ``root/{train,val}/<wnid>/<image>.JPEG``: each class one colour plus seeded noise."""
    rng = np.random.default_rng(0)
    for split, count in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES)):
        for label, colour in enumerate(COLOURS):
            folder = root / split / f"n{label:08d}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(colour) + rng.normal(0, 40, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"n{label:08d}_{i}.JPEG", quality=90)
    return root


def write_config(tmp: Path, data_dir: Path) -> Path:
    """imagenet_supernet.yaml with sizes for this test and this host's devices, written to ``tmp``."""
    doc = yaml.safe_load(CONFIG.read_text())
    doc["space"] = str(SPACE)
    doc["data"].update(data_dir=str(data_dir), classes=len(COLOURS), images_per_class=TRAIN_IMAGES, holdout=HOLDOUT)
    doc["proxy"]["config"] = str(ROOT / doc["proxy"]["config"])
    size = {"epoch_size": 1, "warmup_epochs": 0, "decay_epochs": 1, "batch_size": BATCH, "image_resize": SIZE,
            "num_parallel_workers": 1}
    doc["proxy"]["overrides"].update(size, device_target="CPU")
    doc["supernet"]["overrides"].update(size, distribute=True)
    doc["supernet"].update(score_images=SCORE_IMAGES, score_batch=4, calibration_batches=1)
    doc["verify"].update(max_genomes=1, seeds=1, epochs_factor=1)
    doc["latency"].update(lut=str(tmp / "lut_ort.csv"), cache=str(tmp / "latency_cache.sqlite"),
                          backend="onnxruntime", device="CPU", resolution=SIZE, warmup=1, repeats=3)
    doc.update(trials=4, workers=2, devices=[0, 1], out=str(tmp / "out"))
    path = tmp / "imagenet_supernet.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def environment() -> dict[str, str]:
    """The user's environment, with this project importable and this interpreter first on the PATH (msrun
    starts its workers with ``python``)."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT), PATH=path)


def command(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` in a session of its own; on timeout the whole session is killed."""
    proc = subprocess.Popen(args, cwd=cwd, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def search_py(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python search.py ARGS`` in ``cwd``; fails the test with its output unless it exits 0."""
    proc = command([sys.executable, str(ROOT / "search.py"), *args], cwd)
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def front_of(trials: pd.DataFrame) -> set[int]:
    """Numbers of the scored trials no other scored trial beats on both accuracy and latency."""
    scored = trials[trials.reused_from.isna()]
    return {a.number for a in scored.itertuples()
            if not any(b.accuracy >= a.accuracy and b.latency_ms <= a.latency_ms
                       and (b.accuracy, b.latency_ms) != (a.accuracy, a.latency_ms) for b in scored.itertuples())}


@pytest.mark.slow
def test_imagenet_supernet_config_runs_msrun_supernet_lut_search_on_two_devices_and_verify(tmp_path: Path) -> None:
    msrun = shutil.which("msrun")
    assert msrun is not None, "msrun (installed with MindSpore) is not on the PATH"
    config = write_config(tmp_path, write_tree(tmp_path / "imagenet"))
    out = tmp_path / "out"

    # 1. the supernet on 2 ranks: each epoch's 32 images in steps of 2 x 8, so 2 steps (one process: 4)
    logs = tmp_path / "msrun_logs"
    proc = command([msrun, "--worker_num", str(RANKS), "--local_worker_num", str(RANKS), "--master_port",
                    str(free_port()), "--join", "True", "--log_dir", str(logs), str(ROOT / "search.py"),
                    "supernet", "train", "--config", str(config), "--no-progress"], tmp_path)
    worker_logs = [(logs / f"worker_{r}.log").read_text() if (logs / f"worker_{r}.log").is_file() else ""
                   for r in range(RANKS)]
    said = [[line for line in log.splitlines() if not line.startswith("[")][-20:] for log in worker_logs]
    assert proc.returncode == 0, (proc.stderr[-2000:], said)   # the workers' own lines, not MindSpore's log
    supernet = out / "supernet"
    steps = N_TRAIN // (RANKS * BATCH)
    assert [p.name.rsplit("-", 1)[1] for p in supernet.glob("*.ckpt") if p.name != "best.ckpt"] == \
        [f"1_{steps}.ckpt"]
    assert (supernet / "best.ckpt").is_file()
    metrics = pd.read_csv(supernet / "metrics.csv")
    assert list(zip(metrics.epoch, metrics.step, metrics.train_images)) == [(1, steps, N_TRAIN)]
    # rank 0 alone scores and reports the trained supernet
    assert "supernet trained in" in worker_logs[0] and "supernet trained in" not in worker_logs[1]

    # 2. the latency table of the space at the config's target
    search_py("lut", "build", "--space", str(SPACE), "--backend", "onnxruntime", "--device", "CPU",
              "--resolution", str(SIZE), "--warmup", "1", "--repeats", "3", "--calibrate", "2",
              "--cache", str(tmp_path / "latency_cache.sqlite"), "--out", str(tmp_path / "lut_ort.csv"),
              "--no-progress", cwd=tmp_path)
    table = LatencyTable.load(tmp_path / "lut_ort.csv")
    assert table.space.name == "tiny" and table.target.resolution == SIZE and table.target.backend == "onnxruntime"

    # 3. the search: 2 workers on CPU devices 0 and 1, scoring with the supernet, latency from the table
    search_py("run", "--config", str(config), cwd=tmp_path)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and set(trials.state) == {"COMPLETE"} and trials.baseline[0]
    assert parse_genome(trials.genome[0]) == parse_genome(yaml.safe_load(SPACE.read_text())["skeleton"])
    assert set(trials.accuracy_source) == {"supernet"} and set(trials.holdout_images) == {SCORE_IMAGES}
    for row in trials.itertuples():
        assert row.latency_ms == pytest.approx(table.predict(parse_genome(row.genome)), rel=1e-9)
        assert row.accuracy * SCORE_IMAGES == pytest.approx(round(row.accuracy * SCORE_IMAGES))
    scored = trials[trials.reused_from.isna()]
    assert scored.device.notna().all() and trials[trials.reused_from.notna()].device.isna().all()
    assert set(scored.device) == {"CPU:0", "CPU:1"}, trials[["number", "genome_key", "reused_from", "device"]]

    # 4. verify: the fastest front genome and MixNet-S (the baseline), one reference run each at seed 41
    # (below the recipe's 42, which proxy runs start from)
    search_py("verify", "--config", str(config), "--no-progress", cwd=tmp_path)
    front = front_of(trials)
    fastest = trials[trials.number.isin(front)].sort_values("latency_ms").number.iloc[0]
    verified = pd.read_csv(out / "verified.csv")
    assert set(verified.trial) == {int(fastest), 0} and verified.baseline.sum() == 1
    assert set(verified.reference_epochs) == {1}
    runs = pd.read_csv(out / "verify_runs.csv")
    assert len(runs) == len(verified) and set(runs.seed) == {41} and set(runs.holdout_images) == {N_HOLDOUT}
    by_genome = dict(zip(runs.genome_key, 100 * runs.accuracy))
    for row in verified.itertuples():
        assert row.verified_top1 == pytest.approx(by_genome[parse_genome(row.genome).key()])
