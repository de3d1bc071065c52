"""Honest accuracy bookkeeping: reused runs keyed by their data, verdicts no surer than their seeds allow,
failed trials counted, a front the noise cannot order said to be so, and the noise_sd line a check prints."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from search.report import COLUMNS, difference, pareto_front, summary, trials_frame
from space import parse_genome
from test_proxy_check import SMALL, check_config
from test_search import digits_dir  # noqa: F401 - the fixture is shared
from test_search_paths import StubTrain, cost_latency


def test_reused_runs_are_keyed_by_their_data(tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811
    """A finished run is reused for the same genome, seed, recipe and data only: holding out another fraction
    of the images trains again (the proxy split's folder is the same path, its images are not), going back
    reuses, another MixConv implementation trains again, and a row logged without a data digest is never
    matched; each row names the implementation that computed. Real training of 3 digit classes, in
    PyNative mode (no graph to compile for so little work)."""
    import mindspore as ms

    from search.accuracy_runs import Run, RunLog, data_digest, train_runs
    from search.config import load_search_config
    from search.proxy_data import plan_proxy_data, prepare_proxy_data
    from search.recipes import on_proxy_data, proxy_train_config
    from mixnet.mixconv import implementation
    from trainer import train

    trained: list[int] = []

    def counted(recipe, network, **kwargs):
        trained.append(int(recipe.seed))
        return train(recipe, network, **kwargs)

    def run_with(holdout: float, impl: str = "auto") -> tuple[Run, pd.DataFrame]:
        data = {"dataset": "imagefolder", "data_dir": str(digits_dir), "classes": 3, "images_per_class": 20,
                "holdout": holdout}
        cfg = load_search_config(check_config(tmp_path, digits_dir, data=data))
        plan = plan_proxy_data(cfg.data)
        proxy = prepare_proxy_data(cfg.data, cfg.out_dir, plan)
        recipe = on_proxy_data(proxy_train_config(cfg).replace(epoch_size=1, mode=1, mixconv_impl=impl), proxy)
        run = Run(0, "proxy", parse_genome(SMALL), recipe, data_digest(cfg.data, plan))
        return run, train_runs([run], RunLog(tmp_path / "runs.csv"), proxy, counted, progress=False)

    try:
        first, rows = run_with(0.3)
        assert len(trained) == 1 and rows.holdout_images.tolist() == [18]
        again, rows_again = run_with(0.3)
        assert len(trained) == 1 and rows_again.accuracy.tolist() == rows.accuracy.tolist()
        other, rows_other = run_with(0.4)
        assert len(trained) == 2 and rows_other.holdout_images.tolist() == [24]
        run_with(0.3)
        assert len(trained) == 2
        run_with(0.3, "padded")     # another MixConv implementation: trained again, and recorded
        assert len(trained) == 3
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    assert other.recipe.data_dir == first.recipe.data_dir and other.data != first.data
    log = pd.read_csv(tmp_path / "runs.csv")
    assert len(log) == 3 and log.data.nunique() == 2 and log.recipe.nunique() == 2
    assert log.mixconv_impl.tolist() == [implementation("auto").name] * 2 + ["padded"]
    # a row of an older log (no data column) is not this run
    log.drop(columns="data").to_csv(tmp_path / "old.csv", index=False)
    assert RunLog(tmp_path / "old.csv").find(first) is None
    assert RunLog(tmp_path / "runs.csv").find(first) is not None
    # the split a run is scored on is part of its recipe's key
    assert Run(0, "proxy", first.genome, first.recipe.replace(val_split="train"), first.data).key() != first.key()
    # and so is the device it computes on
    assert Run(0, "proxy", first.genome, first.recipe.replace(device_target="Ascend"), first.data).key() != first.key()


def rows_of(trials: list[dict]) -> pd.DataFrame:
    """A trials table (the columns of trials.csv) of finished, feasible proxy trials."""
    base = {c: None for c in COLUMNS}
    frame = pd.DataFrame([{**base, "state": "COMPLETE", "feasible": True, "baseline": False, "params": 1000,
                           "madds": 10 ** 6, "accuracy_source": "proxy", **t} for t in trials], columns=COLUMNS)
    frame["accuracy"] = [float(np.mean(s)) for s in frame.accuracy_seeds]
    return frame


def hand_se(seeds: list[float], n: int, noise: "float | None") -> float:
    """One trial's standard error: the binomial error of its mean on n images plus its training noise (the
    seeds' sample variance, or the stated noise squared for one seed) over the seed count."""
    p = sum(seeds) / len(seeds)
    training = statistics.variance(seeds) if len(seeds) > 1 else noise ** 2
    return math.sqrt(p * (1 - p) / n + training / len(seeds))


def test_unequal_seed_counts_combine_each_sides_error() -> None:
    """A trial and MixNet-S at different seed counts: the error of their difference is Welch's, never smaller
    than either side's; a side with one seed and no stated noise gives no verdict."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(200, 5000))
        a = list(rng.uniform(0.6, 0.9, int(rng.integers(1, 4))))
        b = list(rng.uniform(0.6, 0.9, int(rng.integers(1, 4))))
        if len(a) == len(b):
            b.append(float(rng.uniform(0.6, 0.9)))
        noise_a, noise_b = (float(rng.uniform(0.002, 0.03)) for _ in range(2))
        trial, base = rows_of([{"accuracy_seeds": a, "holdout_images": n, "noise_sd": noise_a},
                               {"accuracy_seeds": b, "holdout_images": n, "noise_sd": noise_b}]).itertuples()
        diff, se, word = difference(trial, base)
        sa, sb = 100 * hand_se(a, n, noise_a), 100 * hand_se(b, n, noise_b)
        assert se == pytest.approx(math.sqrt(sa ** 2 + sb ** 2), rel=1e-9)
        assert se >= max(sa, sb)
        assert diff == pytest.approx(100 * (np.mean(a) - np.mean(b)))
        assert word == ("better" if diff > 2 * se else "worse" if diff < -2 * se else "indistinguishable")
    # one seed, stated noise 3 points: 4.5 points better than a two-seed baseline is within noise
    trial, base = rows_of([{"accuracy_seeds": [0.85], "holdout_images": 2000, "noise_sd": 0.03},
                           {"accuracy_seeds": [0.80, 0.81], "holdout_images": 2000}]).itertuples()
    assert difference(trial, base)[2] == "indistinguishable"
    # one seed and no stated noise: its training noise is unknown, so there is no verdict
    trial, base = rows_of([{"accuracy_seeds": [0.95], "holdout_images": 2000},
                           {"accuracy_seeds": [0.80, 0.81], "holdout_images": 2000}]).itertuples()
    assert difference(trial, base)[1:] == (None, "unknown")


def front_frame(seeds: list[list[float]], n: int) -> pd.DataFrame:
    """Trial 0 (MixNet-S) and two others, latency rising with accuracy, so all three are on the front."""
    return rows_of([{"number": i, "accuracy_seeds": s, "holdout_images": n, "latency_ms": 3.0 + i,
                     "baseline": i == 0, "genome": "g", "genome_key": str(i)} for i, s in enumerate(seeds)])


def paired_se_points(a: list[float], b: list[float], n: int) -> float:
    """The error of a seed-paired difference by hand: both binomial errors and the per-seed differences' spread."""
    binomial = sum(p * (1 - p) / n for p in (sum(a) / len(a), sum(b) / len(b)))
    return 100 * math.sqrt(binomial + statistics.variance([x - y for x, y in zip(a, b)]) / len(a))


def test_summary_says_when_the_noise_cannot_order_the_front(tmp_path: Path) -> None:
    seeds = [[0.80, 0.82], [0.805, 0.83], [0.815, 0.825]]
    frame = front_frame(seeds, 500)
    front = pareto_front(frame, ["accuracy", "latency_ms"])
    assert len(front) == 3
    text = summary(frame, front, tmp_path)
    band = 2 * max(paired_se_points(a, b, 500) for i, a in enumerate(seeds) for b in seeds[i + 1:])
    assert (f"The 3 front genomes are within noise of one another (+-{band:.1f} points): the accuracy measure "
            "cannot order them; choose by latency, then run 'search.py verify'") in text
    apart = front_frame([[0.80, 0.805], [0.90, 0.905], [0.95, 0.951]], 5000)
    text = summary(apart, pareto_front(apart, ["accuracy", "latency_ms"]), tmp_path)
    assert "within noise of one another" not in text and "beyond noise:" not in text
    assert "more accurate: trials 1, 2" in text


def test_summary_counts_failed_trials_and_names_the_most_common_error(tmp_path: Path,
                                                                      digits_dir: Path) -> None:  # noqa: F811
    """A study evaluated by the search's own objective, whose trainer fails twice out of memory and once on a
    NaN loss: the errors the objective stores are counted and the most common one named."""
    from search.config import load_search_config
    from search.objective import Evaluator
    from search.proxy_data import plan_proxy_data, proxy_data_of
    from search.recipes import on_proxy_data, proxy_train_config
    from space.search_space import SearchSpace

    failures = {1: MemoryError("out of host memory"), 2: MemoryError("out of host memory"),
                4: FloatingPointError("loss is nan\nat step 3")}
    stub, calls = StubTrain(), []

    def failing(cfg, genome, **kwargs):
        calls.append(genome)
        if len(calls) - 1 in failures:
            raise failures[len(calls) - 1]
        return stub(cfg, genome, **kwargs)

    cfg = load_search_config(check_config(tmp_path, digits_dir))
    proxy = proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir)
    evaluator = Evaluator(cfg, SearchSpace.from_yaml(cfg.space), proxy, on_proxy_data(proxy_train_config(cfg), proxy),
                          failing, cost_latency, target=10, worker="test:0")
    study = optuna.create_study(directions=cfg.goal.directions, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(evaluator, n_trials=6, catch=(Exception,))
    assert len(calls) == 6 and len(study.get_trials(states=(optuna.trial.TrialState.FAIL,))) == 3
    frame = trials_frame(study)
    text = summary(frame, pareto_front(frame, ["accuracy", "latency_ms"]), tmp_path)
    assert "3 failed trials; most common error (2 of 3): MemoryError: out of host memory" in text.splitlines()


def test_supernet_check_prints_the_noise_sd_to_paste() -> None:
    """The line holds the paired noise of the scores (each supernet's shift over all genomes taken out), by hand."""
    from search.fidelity import fidelity
    from search.supernet.check import describe
    rng = np.random.default_rng(4)
    scores = rng.normal(70, 3, (6, 1)) + rng.normal(0, 4, (1, 3)) + rng.normal(0, 2, (6, 3))
    report = fidelity(scores, scores[:, :1] + 1.0)
    report["supernet"] = report.pop("proxy")
    report.update(config="configs/search/supernet_demo.yaml", seed=0, sampling="spread", reference_recipe=None,
                  supernets=3, holdout_images=1024, binomial_se_points=1.4, supernet_mean_top1=70.0,
                  reference_mean_top1=71.0, seconds_per_genome=0.5, supernet_train_seconds=[10.0] * 3,
                  supernet_epochs=4, reference_epochs=6, seconds_per_reference_run=5.0,
                  free_rankings_tau={"params": 0.1}, outputs=["x"])
    centred = [[scores[g][s] - statistics.mean(scores[:, s]) for s in range(3)] for g in range(6)]
    paired = math.sqrt(statistics.mean(statistics.variance(row) for row in centred))
    line = [ln for ln in describe(report).splitlines() if ln.startswith("noise_sd:")]
    assert len(line) == 1
    value = re.match(r"noise_sd: ([0-9.]+)   # paste under supernet: in configs/search/supernet_demo\.yaml; "
                     r"measured by: search\.py supernet check --config configs/search/supernet_demo\.yaml "
                     r"--genomes 6 --seed 0 --sampling spread --supernets 3 --reference-seeds 1$", line[0])
    assert value is not None, line[0]
    assert value.group(1) == f"{paired:.2f}"
