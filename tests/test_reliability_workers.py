"""Four independent search commands on one storage (as four machines would run them)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import optuna
import pytest

from conftest import run_cli
from search.storage import open_storage
from test_reliability_search import start_run
from test_search import digits_dir, tiny_config  # noqa: F401 - the fixture is shared

TARGET = 6


def storage_url(kind: str, tmp_path: Path) -> str:
    """A fresh storage of ``kind``; PostgreSQL only when CI started a server."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if kind == "journal":
        return f"journal:{tmp_path / 'study.log'}"
    url = os.environ.get("MIXNAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: .ci/run starts one and sets MIXNAS_TEST_POSTGRES_URL")
    return url


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql"])
def test_four_workers_exact_count_no_genome_twice(tmp_path: Path, digits_dir: Path, kind: str) -> None:  # noqa: F811
    url = storage_url(kind, tmp_path)
    study_name = f"tiny-{kind}-{os.getpid()}-{tmp_path.name}"
    config = tiny_config(tmp_path, digits_dir, space="pair_space.yaml", trials=TARGET, sampler="random",
                         study=study_name)
    procs = [start_run(config, "--storage", url, "--seed", str(rank)) for rank in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name=study_name, storage=open_storage(url, heartbeat=False))
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == TARGET
    trained = [t.user_attrs["genome_key"] for t in done if "reused_from" not in t.user_attrs]
    assert len(trained) == len(set(trained)) <= 2
    assert len({t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs}) >= 2
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


@pytest.mark.slow
def test_two_workers_of_one_command_on_sqlite_evaluate_each_genome_once(tmp_path: Path,
                                                                         digits_dir: Path) -> None:  # noqa: F811
    """``run --workers 2`` on an SQLite file: two processes of one command (the journal case is in test_search)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    config = tiny_config(tmp_path, digits_dir, space="pair_space.yaml", trials=4)
    proc = run_cli("run", "--config", str(config), "--workers", "2", "--storage", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="tiny", storage=open_storage(url, heartbeat=False))
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 4
    trained = [t.user_attrs["genome_key"] for t in done if "reused_from" not in t.user_attrs]
    assert len(trained) == len(set(trained)) <= 2
    assert {t.user_attrs["genome_key"] for t in done} == set(trained)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert (tmp_path / "out" / "pareto.png").is_file() and "finished trials" in proc.stdout


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql"])
def test_a_trials_fields_are_written_together_and_read_back_on_every_storage(tmp_path: Path, kind: str) -> None:
    """``store`` writes several fields in one transaction on a database (one by one on a journal); each reads
    back as written, a later write replaces a field, and a finished trial refuses more."""
    from search.record import TrialRecord, store
    url = storage_url(kind, tmp_path)
    study = optuna.create_study(storage=open_storage(url, heartbeat=False), study_name=f"attrs-{uuid.uuid4().hex}")
    trial = study.ask()
    store(trial, genome="mixnet_s", genome_key="k", params=4134606, feasible=True, accuracy_seeds=[0.5, 0.25])
    store(trial, params=1, stage="scoring")
    study.tell(trial, 0.5)
    record = TrialRecord.from_trial(study.trials[0])
    assert (record.genome, record.genome_key, record.params, record.feasible, record.accuracy_seeds, record.stage) \
        == ("mixnet_s", "k", 1, True, [0.5, 0.25], "scoring")
    with pytest.raises(RuntimeError):
        store(trial, stage="latency", params=2)
    with pytest.raises(KeyError, match="no field 'nope'"):
        store(study.ask(), nope=1, params=3)
