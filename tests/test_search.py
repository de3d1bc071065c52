"""The search end to end on a tiny space and tiny data: real training, real ONNX Runtime latency."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from conftest import ROOT, assert_user_error, run_cli
from search.config import load_search_config
from search.report import summary, trials_frame, write_outputs
from search.runner import enqueue_baseline, run_search
from space import parse_genome, preset
from space.cost import network_cost
from space.search_space import SearchSpace

DATA = Path(__file__).parent / "data"


class TrainSpy:
    """Wraps the real trainer and records every genome it is asked to train."""

    def __init__(self) -> None:
        from trainer import train
        self.train = train
        self.keys: list[str] = []

    def __call__(self, cfg, genome, **kwargs):
        self.keys.append(genome.key())
        return self.train(cfg, genome, **kwargs)


TINY_LATENCY = {"backend": "onnxruntime", "resolution": 64, "warmup": 2, "repeats": 5, "min_span_s": 0.0}
"""Latency of the tiny searches: 64 px, 5 timed runs, no minimum span (each timing holds the machine's
device turn, so the other test worker's training waits for it)."""


def tiny_config(tmp_path: Path, digits_dir: Path, space: str = "tiny_space.yaml", **changes) -> Path:
    """A search config for the tiny space: 1 proxy epoch on few digits, latency ``TINY_LATENCY``."""
    doc = {
        "space": str(DATA / space),
        "data": {"dataset": "imagefolder", "data_dir": str(digits_dir), "images_per_class": 24,
                 "holdout": 0.25},
        "proxy": {"config": str(ROOT / "configs" / "train" / "digits.yaml"),
                  "overrides": {"epoch_size": 1, "batch_size": 16, "num_parallel_workers": 1}},
        "latency": dict(TINY_LATENCY),
        "trials": 4, "study": "tiny", "out": str(tmp_path / "out"), "seed": 1,
    }
    doc.update(changes)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits dataset as an ImageFolder tree (written once for the module)."""
    from trainer.bundled import write_digits
    return write_digits(tmp_path_factory.mktemp("digits") / "digits", size=32)


def completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished trials of a study."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def test_baseline_of_default_space_is_mixnet_s() -> None:
    space = SearchSpace.from_yaml(ROOT / "configs" / "space" / "mixnet_s.yaml")
    study = optuna.create_study(directions=["maximize", "minimize"])
    enqueue_baseline(study, space)
    trial = study.ask()
    assert trial.number == 0 and space.sample(trial) == preset("mixnet_s")


def test_study_runs_reuses_resumes_and_writes_outputs(tmp_path: Path, digits_dir: Path) -> None:
    """The proxy trains 5 of the 10 digit classes at the recipe's width 0.5; what the study records,
    writes and prints is the space's network (10 classes, width 1)."""
    spy = TrainSpy()
    proxy_data = {"dataset": "imagefolder", "data_dir": str(digits_dir), "images_per_class": 24, "holdout": 0.25,
                  "classes": 5}
    config = tiny_config(tmp_path, digits_dir, space="pair_space.yaml", data=proxy_data)
    cfg = load_search_config(config)
    study = run_search(cfg, show_progress=False, train_fn=spy)
    done = completed(study)
    assert len(done) == 4
    first = study.trials[0]
    skeleton = SearchSpace.from_yaml(DATA / "pair_space.yaml").skeleton
    assert first.user_attrs["baseline"] and parse_genome(first.user_attrs["genome"]) == skeleton
    assert first.user_attrs["params"] == network_cost(skeleton, 64).params
    assert parse_genome(first.user_attrs["proxy_genome"]) == skeleton.with_changes(num_classes=5, width=0.5)
    assert set(spy.keys) <= {parse_genome(t.user_attrs["proxy_genome"]).key() for t in done}
    assert len(spy.keys) == len(set(spy.keys)) <= 2
    assert sum(1 for t in done if "reused_from" in t.user_attrs) == 4 - len(spy.keys)
    for t in done:
        assert 0.0 <= t.user_attrs["accuracy"] <= 1.0 and t.user_attrs["latency_ms"] > 0

    again = run_search(load_search_config(config, {"trials": 6}), show_progress=False, train_fn=spy)
    assert len(completed(again)) == 6 and len(spy.keys) == len(set(spy.keys))

    front = write_outputs(again, cfg.out_dir, ["accuracy", "latency_ms"])
    out = cfg.out_dir
    trials = pd.read_csv(out / "trials.csv")
    assert {"number", "state", "genome", "accuracy", "latency_ms", "params", "madds",
            "proxy_genome"} <= set(trials.columns)
    assert parse_genome(trials.genome[0]) == skeleton and trials.params[0] == network_cost(skeleton, 64).params
    assert len(pd.read_csv(out / "pareto.csv")) == len(front) >= 1
    assert (out / "pareto.png").stat().st_size > 10_000
    best = sorted((out / "best").glob("*.yaml"))
    assert len(best) == len(front) and all(parse_genome(str(b)).num_classes == 10 for b in best)
    assert {parse_genome(str(b)).width for b in best} == {1.0}
    text = summary(trials_frame(again), front, out)
    assert text.splitlines()[-1].startswith("  python search.py verify")   # no verified.csv yet: verify first


def test_infeasible_genomes_are_never_trained(tmp_path: Path, digits_dir: Path) -> None:
    spy = TrainSpy()
    limit = 8_000
    cfg = load_search_config(tiny_config(tmp_path, digits_dir, trials=6, constraints={"params": limit},
                                         sampler="random"))
    study = run_search(cfg, show_progress=False, train_fn=spy)
    frame = trials_frame(study)
    done = frame[frame.state == "COMPLETE"]
    over = done[done.params > limit]
    assert not over.empty and not over.feasible.any()
    assert not {parse_genome(g).key() for g in over.proxy_genome} & set(spy.keys)
    assert (over.train_seconds == 0).all() and (over.accuracy == 0).all()
    for t in completed(study):
        assert (t.constraints["params"] > 0) == (t.user_attrs["params"] > limit)


@pytest.mark.slow
def test_two_workers_on_a_journal_evaluate_each_genome_once(tmp_path: Path, digits_dir: Path) -> None:
    """Two worker processes of one command on a journal file (SQLite: test_reliability_workers.py)."""
    url = f"journal:{tmp_path / 'study.log'}"
    config = tiny_config(tmp_path, digits_dir, trials=5)
    proc = run_cli("run", "--config", str(config), "--workers", "2", "--storage", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from search.storage import open_storage
    study = optuna.load_study(study_name="tiny", storage=open_storage(url, heartbeat=False))
    done = completed(study)
    assert len(done) == 5
    trained = [t.user_attrs["genome_key"] for t in done if "reused_from" not in t.user_attrs]
    assert len(trained) == len(set(trained))
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    assert (tmp_path / "out" / "pareto.png").is_file() and "finished trials" in proc.stdout


def test_bad_search_input(tmp_path: Path, digits_dir: Path) -> None:
    config = tiny_config(tmp_path, digits_dir)
    doc = yaml.safe_load(config.read_text())
    cases = [
        ({"sampler": "annealing"}, ["sampler 'annealing' - allowed: tpe, nsga2, nsga3, random"]),
        ({"trails": 3}, ["unknown key 'trails' - did you mean trials"]),
        ({"constraints": {"flops": 1e6}}, ["constraint on metric 'flops' - allowed: latency_ms, params, madds"]),
        ({"space": str(tmp_path / "nope.yaml")}, ["space file", "not found"]),
        ({"data": {"dataset": "imagefolder", "data_dir": str(tmp_path / "empty")}}, ["not found"]),
        ({"latency": {**doc["latency"], "min_span_s": 60}}, ["min_span_s 60 - must be a number of seconds from 0 to 30"]),
    ]
    for change, fragments in cases:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump({**doc, **change}))
        assert_user_error(run_cli("run", "--config", str(bad)), *fragments)
    assert_user_error(run_cli("run", "--config", str(config), "--storage", "redis://nowhere"),
                      "storage 'redis://nowhere'")
    db = tmp_path / "other.db"
    other = optuna.create_study(study_name="tiny", storage=f"sqlite:///{db}", directions=["maximize"])
    other.set_user_attr("objectives", ["mnas_reward"])
    assert_user_error(run_cli("run", "--config", str(config), "--storage", f"sqlite:///{db}"),
                      "study 'tiny' exists with objectives ['mnas_reward']")
    kept = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    assert len(kept.trials) == 0 and kept.user_attrs == {"objectives": ["mnas_reward"]}
