"""One search worker per device: worker i binds the i-th listed device before anything runs, and every trial
records the device MindSpore reported where it trained or was scored (trials.csv, column ``device``).

MindSpore's CPU target takes a device id (``set_device("CPU", 1)`` then reports device 1), so two workers
on ``devices: [0, 1]`` are seen binding CPU:0 and CPU:1 here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from search.config import load_search_config
from search.report import write_outputs
from search.runner import run_search
from search.supernet.training import train_supernet
from space.basics.errors import UsageError
from test_search import digits_dir, tiny_config  # noqa: F401 - the fixture is shared
from test_search_paths import cost_latency

# Latency timed by MindSpore itself: a worker bound to CPU:1 can time on CPU:1 only.
TIMED_HERE = {"backend": "mindspore", "resolution": 32, "warmup": 0, "repeats": 5, "min_span_s": 0.0}


def trials_csv(config: Path, latency_fn: "Callable | None" = None) -> pd.DataFrame:
    """Run the search of ``config`` (latencies from ``latency_fn`` when given) and read back its trials.csv."""
    cfg = load_search_config(config)
    study = run_search(cfg, show_progress=False, latency_fn=latency_fn)
    write_outputs(study, cfg.out_dir, cfg.goal.front_objectives)
    return pd.read_csv(cfg.out_dir / "trials.csv")


def assert_each_worker_on_its_device(frame: pd.DataFrame, devices: set[str]) -> None:
    """Every trial that trained or was scored names its device; each worker stayed on one device, and the
    workers' devices are ``devices``, one each."""
    ran = frame[frame.reused_from.isna() & (frame.feasible == True)]  # noqa: E712 - pandas mask
    assert ran.device.notna().all(), ran[["number", "worker", "device"]]
    per_worker = ran.groupby("worker").device.unique()
    assert len(per_worker) == 2 and all(len(d) == 1 for d in per_worker), per_worker
    assert {d[0] for d in per_worker} == devices, per_worker


def test_two_workers_train_and_time_on_their_own_devices(tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811
    """Latency timed by MindSpore in each worker: worker 1, bound to CPU:1, times there too."""
    config = tiny_config(tmp_path, digits_dir, workers=2, devices=[0, 1], trials=3, latency=TIMED_HERE)
    frame = trials_csv(config)
    assert (frame.state == "COMPLETE").sum() == 3
    assert set(frame.accuracy_source.dropna()) == {"proxy"}
    assert_each_worker_on_its_device(frame, {"CPU:0", "CPU:1"})


def test_two_workers_score_with_the_supernet_on_their_own_devices(tmp_path: Path,
                                                                  digits_dir: Path) -> None:  # noqa: F811
    """Latency from the cost model: nothing but the worker's own binding puts MindSpore on CPU:1."""
    config = tiny_config(tmp_path, digits_dir, workers=2, devices=[0, 1], trials=3,
                         accuracy={"source": "supernet"},
                         supernet={"overrides": {"epoch_size": 1}, "calibration_batches": 1, "score_images": 32})
    train_supernet(load_search_config(config), progress=False)
    frame = trials_csv(config, cost_latency)
    assert (frame.state == "COMPLETE").sum() == 3
    assert set(frame.accuracy_source.dropna()) == {"supernet"}
    assert_each_worker_on_its_device(frame, {"CPU:0", "CPU:1"})


def test_a_device_no_worker_uses_stops_the_search_before_any_work(tmp_path: Path,
                                                                   digits_dir: Path) -> None:  # noqa: F811
    config = tiny_config(tmp_path, digits_dir, workers=1, devices=[0, 1])
    with pytest.raises(UsageError, match=r"devices \[0, 1\] - more devices than the 1 worker\(s\): set workers: 2"):
        run_search(load_search_config(config), show_progress=False)
    assert not (tmp_path / "out").exists()
