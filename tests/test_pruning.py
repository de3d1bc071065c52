"""Multi-objective successive halving on a tiny space, and the finished study in optuna-dashboard.

One search with the pruner runs with real training; its pruned genomes are then trained to the end
with the same recipe, so the front found with pruning can be compared with the front the same
sampled genomes give without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from conftest import free_port
from search.config import load_search_config
from search.pruning import is_kept
from search.proxy_data import proxy_data_of, plan_proxy_data
from search.recipes import on_proxy_data, proxy_train_config
from search.report import pareto_front, trials_frame, write_outputs
from search.runner import run_search
from space import parse_genome
from test_search import TrainSpy, digits_dir, tiny_config  # noqa: F401 - digits_dir is a fixture

EPOCHS = 3


class PrunedFrontMember(Warning):
    """A genome the pruner stopped would have joined the front had it trained to the end."""


def test_pareto_rank_rule_keeps_the_front_and_the_best_third() -> None:
    # (minus accuracy, latency): the rung's front is (-0.9, 9) and (-0.5, 5); (-0.4, 10) is dominated by both
    points = [[-0.9, 9.0], [-0.5, 5.0], [-0.4, 10.0], [-0.45, 6.0], [-0.3, 12.0], [-0.2, 13.0]]
    assert [is_kept(points, i, 3) for i in range(6)] == [True, True, False, False, False, False]
    assert [is_kept(points, i, 2) for i in range(6)] == [True, True, False, True, False, False]
    assert is_kept([[-0.1, 30.0]], 0, 3), "the first trial at a rung always goes on"


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> dict:  # noqa: F811
    """A 10-trial search of the tiny space with ``mo_halving`` (eta 4: rung at epoch 1 of 3)."""
    root = tmp_path_factory.mktemp("pruned")
    config = tiny_config(root, digits_dir, trials=10, sampler="random", seed=3,
                         pruner={"type": "mo_halving", "eta": 4, "min_epochs": 1},
                         proxy={"config": str(Path(__file__).parents[1] / "configs" / "train" / "digits.yaml"),
                                "overrides": {"epoch_size": EPOCHS, "batch_size": 16, "num_parallel_workers": 1,
                                              "val_while_train": False}})
    cfg = load_search_config(config)
    spy = TrainSpy()
    study = run_search(cfg, show_progress=False, train_fn=spy)
    return {"cfg": cfg, "study": study, "spy": spy, "url": cfg.storage.url}


@pytest.mark.slow
def test_pruned_trials_stop_at_their_rung_and_the_front_is_kept(pruned_search: dict) -> None:
    cfg, study, spy = pruned_search["cfg"], pruned_search["study"], pruned_search["spy"]
    trials = [t for t in study.trials if "genome" in t.user_attrs]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(pruned) + len(complete) == 10 and pruned, "pruned trials count toward the target"
    assert len(spy.keys) == len(set(spy.keys)), "a genome is trained once, a pruned one never again"
    trained = [t for t in trials if "reused_from" not in t.user_attrs]
    for t in trained:
        curve = t.user_attrs["intermediate_accuracy"]
        if t.state == TrialState.PRUNED:
            assert t.user_attrs["pruned_at_epoch"] == 1 == len(curve) == t.user_attrs["epochs_done"]
            earlier = [o for o in trained if o.number < t.number]
            assert any(o.user_attrs["intermediate_accuracy"][0] >= curve[0]
                       and o.user_attrs["latency_ms"] <= t.user_attrs["latency_ms"]
                       and (o.user_attrs["intermediate_accuracy"][0], o.user_attrs["latency_ms"])
                       != (curve[0], t.user_attrs["latency_ms"]) for o in earlier), \
                f"trial {t.number} was stopped though no earlier trial dominated it at epoch 1"
        else:
            assert len(curve) == EPOCHS and curve[-1] == pytest.approx(t.user_attrs["accuracy"], abs=1e-6)
    for t in pruned:
        if "reused_from" in t.user_attrs:
            assert study.trials[t.user_attrs["reused_from"]].state == TrialState.PRUNED

    # the pruned genomes trained to the end with the same recipe: the front the same genomes give unpruned
    from trainer import train
    recipe = on_proxy_data(proxy_train_config(cfg), proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir))
    frame = trials_frame(study)
    full = frame.copy()
    for t in pruned:
        if "reused_from" in t.user_attrs:
            continue
        result = train(recipe, parse_genome(t.user_attrs["proxy_genome"]), progress=False, save_checkpoints=False)
        row = full.number == t.number
        full.loc[row, ["state", "accuracy"]] = ["COMPLETE", result.final_top1 / 100.0]
    objectives = ["accuracy", "latency_ms"]
    with_pruning = set(write_outputs(study, cfg.out_dir, objectives).genome_key)
    assert set(pd.read_csv(cfg.out_dir / "pareto.csv").genome_key) == with_pruning
    without = pareto_front(full, objectives)
    pruned_keys = {t.user_attrs["genome_key"] for t in pruned}
    joined = set(without.genome_key) & pruned_keys
    for key in sorted(joined):
        warnings.warn(PrunedFrontMember(f"pruned genome {key} is on the front of the unpruned search"))
    assert set(without.genome_key) - joined <= with_pruning
    points = full.drop_duplicates("genome_key").set_index("genome_key")
    for key in with_pruning - set(without.genome_key):  # on the front only because a pruned genome left it
        mine = points.loc[key]
        assert any(points.loc[j].accuracy >= mine.accuracy and points.loc[j].latency_ms <= mine.latency_ms
                   for j in joined), key
    if not joined:
        assert with_pruning == set(without.genome_key)


def get_json(url: str, deadline: float) -> dict:
    """GET ``url`` as JSON, retrying until the server answers or ``deadline`` passes."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_optuna_dashboard_serves_the_study_with_its_metric_names(pruned_search: dict) -> None:
    study: optuna.Study = pruned_search["study"]
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("optuna-dashboard")), pruned_search["url"],
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/studies"
        studies = get_json(base, time.monotonic() + 60)["study_summaries"]
        (summary,) = [s for s in studies if s["study_name"] == study.study_name]
        detail = get_json(f"{base}/{summary['study_id']}", time.monotonic() + 30)
        assert detail["objective_names"] == ["accuracy", "latency_ms"]
        assert len(detail["trials"]) == len(study.trials)
        first = {a["key"]: a["value"] for a in detail["trials"][0]["user_attrs"]}
        assert parse_genome(first["genome"]).key() == first["genome_key"] and int(first["params"]) > 0
    finally:
        server.terminate()
        server.wait(timeout=30)
