"""Searches killed with SIGKILL at chosen moments, then re-run: nothing is lost, duplicated or corrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import optuna
import pandas as pd
import pytest

from conftest import ROOT
from search.storage import open_storage
from test_search import TINY_LATENCY, digits_dir, tiny_config  # noqa: F401 - the fixture is shared

TrialState = optuna.trial.TrialState
Phase = Callable[[list], bool]


def start_run(config: Path, *extra: str) -> subprocess.Popen:
    """``search.py run`` in its own process group (so SIGKILL reaches every process of it)."""
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "search.py"), "run", "--config", str(config), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)


def trials_of(url: str) -> list:
    """The study's trials as stored right now (empty before the study exists)."""
    storage = open_storage(url, heartbeat=False)
    if "tiny" not in [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]:
        return []
    return optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=True)


def kill_when(proc: subprocess.Popen, url: str, phase: Phase, timeout: float = 300) -> list:
    """SIGKILL the run's process group as soon as ``phase`` holds for the stored trials."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        trials = trials_of(url)
        if phase(trials):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return trials
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the phase was reached: {proc.stderr.read()[-1500:]}")
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("phase not reached in time")


def measuring_latency(trials: list) -> bool:
    """A trial has its genome but no latency yet."""
    return any(t.state == TrialState.RUNNING and "genome_key" in t.user_attrs and "latency_ms" not in t.user_attrs
               for t in trials)


def training(trials: list) -> bool:
    """A trial has its latency and is being proxy-trained."""
    return any(t.state == TrialState.RUNNING and "latency_ms" in t.user_attrs and t.user_attrs.get("feasible")
               and "accuracy" not in t.user_attrs for t in trials)


def target_reached(target: int) -> Phase:
    """Every trial is finished: the run is writing its outputs."""
    return lambda trials: sum(t.state == TrialState.COMPLETE for t in trials) >= target


def check_study(url: str, target: int, finished_before: set[int], killed_running: set[int]) -> None:
    """The invariants a re-run must restore (a genome is retried once: a killed retry is not retried)."""
    trials = trials_of(url)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == target
    assert finished_before <= {t.number for t in done}, "a finished trial was lost"
    trained = [t.user_attrs["genome_key"] for t in done if "reused_from" not in t.user_attrs]
    assert len(trained) == len(set(trained)), "a genome was trained twice"
    by_number = {t.number: t for t in trials}
    for number in killed_running:
        killed = by_number[number]
        assert killed.state == TrialState.FAIL
        retries = [t for t in trials if t.user_attrs.get("retry_of") == number
                   or t.system_attrs.get("failed_trial") == number]
        is_retry = "retry_of" in killed.user_attrs or "failed_trial" in killed.system_attrs
        assert len(retries) == (0 if is_retry else 1), f"trial {number} was retried {len(retries)} times"
        assert all(t.params == killed.params for t in retries)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_search_survives_sigkill_in_every_phase(tmp_path: Path, digits_dir: Path, storage: str) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'study.db'}" if storage == "sqlite" else f"journal:{tmp_path / 'study.log'}"
    target = 4
    # timings over at least 1 s: the run is killed while one is under way
    config = tiny_config(tmp_path, digits_dir, trials=target, sampler="random",
                         latency={**TINY_LATENCY, "min_span_s": 1.0})
    phases = [measuring_latency, training, target_reached(target)] if storage == "sqlite" else [training]
    finished: set[int] = set()
    killed: set[int] = set()
    for phase in phases:
        seen = kill_when(start_run(config, "--storage", url), url, phase)
        finished |= {t.number for t in seen if t.state == TrialState.COMPLETE}
        killed |= {t.number for t in seen if t.state == TrialState.RUNNING}
    rerun = start_run(config, "--storage", url)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    check_study(url, target, finished, killed)
    frame = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert (frame.state == "COMPLETE").sum() == target
    assert (tmp_path / "out" / "pareto.png").is_file() and list((tmp_path / "out" / "best").glob("*.yaml"))
    assert not list((tmp_path / "out").glob(".*tmp*"))
