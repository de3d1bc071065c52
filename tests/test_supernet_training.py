"""Supernet training on digits: sampled genomes, the trainer's checkpoints and resume, scores with its
weights that equal the extracted stand-alone networks' accuracy, and the extract command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import assert_user_error, run_cli
from mixnet import create_model
from mixnet.checkpoint import load_weights
from mixnet.supernet import extract
from search.config import load_search_config
from search.proxy_data import plan_proxy_data, proxy_data_of
from search.recipes import on_proxy_data
from search.report import trials_frame
from search.runner import run_search
from search.supernet.sampling import PathSampler
from search.supernet.scoring import SupernetScorer, load_supernet, scoring_images
from search.supernet.training import supernet_recipe, train_supernet
from space import parse_genome
from space.search_space import SearchSpace
from test_search import DATA, digits_dir, tiny_config  # noqa: F401 - fixture
from trainer.data import scan_split
from trainer.distributed import Ranks
from trainer.validate import evaluate_network

TINY = SearchSpace.from_yaml(DATA / "tiny_space.yaml")


def test_fair_sampling_trains_every_choice_once_per_period_and_sandwich_the_extremes() -> None:
    fair = PathSampler(TINY, "fair", sandwich=False, seed=0)
    for index, d in enumerate(TINY.dimensions):
        for block in range(3):
            seen = [TINY.encode_vector(fair.genome(block * 2 + i))[index] for i in range(2)]
            assert sorted(seen) == [0, 1], d.name
    sandwich = PathSampler(TINY, "uniform", sandwich=True, seed=0)
    widths = [[g.expand_ratio for g in sandwich.genome(step).single_genes()[1:]] for step in range(8)]
    assert widths[0] == widths[4] == [6, 6] and widths[1] == widths[5] == [3, 3]
    assert len({tuple(TINY.encode_vector(fair.genome(s))) for s in range(8)}) > 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> tuple[Path, Any, Any]:  # noqa: F811
    """A tiny search config scoring with a supernet, and that supernet trained for one epoch."""
    config = tiny_config(tmp_path_factory.mktemp("supernet"), digits_dir, accuracy={"source": "supernet"},
                         supernet={"overrides": {"epoch_size": 1}, "calibration_batches": 2},
                         verify={"epochs_factor": 1})
    cfg = load_search_config(config)
    return config, cfg, train_supernet(cfg, progress=False)


def test_a_supernet_trains_resumes_and_scores_genomes_as_their_extracted_networks(trained: tuple) -> None:
    config, cfg, result = trained
    folder = cfg.supernet.dir
    assert result.epochs == 1 and (folder / "best.ckpt").is_file() and (folder / "metrics.csv").is_file()
    assert train_supernet(cfg, progress=False).weights_digest == result.weights_digest  # resumed: done

    ms.set_context(mode=ms.GRAPH_MODE)
    net = load_supernet(cfg)
    recipe = on_proxy_data(supernet_recipe(cfg), proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir))
    images = scoring_images(recipe, 2)
    scorer = SupernetScorer(net, images)
    holdout = scan_split(recipe.data_dir, recipe.val_split, "val_split")
    scores = []
    for genome in [TINY.skeleton, TINY.decode({d.name: d.choices[-1] for d in TINY.dimensions})]:
        scores.append(scorer.score(genome))
        standalone = extract(net, genome)  # with the BatchNorm statistics recalibrated for this genome
        own = evaluate_network(standalone, recipe, holdout, Ranks(0, 1))
        assert own["n"] == len(images.labels) and abs(100 * scores[-1] - own["top1"]) < 1e-6
    assert scorer.score(TINY.skeleton) == scores[0]  # the same batches recalibrate: the same score
    proc = run_cli("supernet", "train", "--config", str(config), "--no-progress")   # resumes: done
    assert proc.returncode == 0, proc.stderr
    assert f"MixNet-S sub-network scores {100 * scores[0]:.2f}% on {len(images.labels)} held-out images" in proc.stdout


def test_supernet_extract_writes_a_checkpoint_the_standalone_network_loads(
        trained: tuple, tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811 - fixture
    config, cfg, _ = trained
    out = tmp_path / "sub.ckpt"
    skeleton = TINY.skeleton.to_string()
    untrained = tiny_config(tmp_path, digits_dir)
    assert_user_error(run_cli("supernet", "extract", skeleton, "--config", str(untrained), "--out", str(out)),
                      "no trained supernet")
    assert_user_error(run_cli("supernet", "extract", "mixnet_s", "--config", str(config), "--out", str(out)),
                      "not in the supernet's space")
    proc = run_cli("supernet", "extract", skeleton, "--config", str(config), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    recipe = supernet_recipe(cfg)
    load_weights(create_model(TINY.skeleton.with_changes(width=recipe.width or 1.0, num_classes=10)), out)

    other = yaml.safe_load((DATA / "tiny_space.yaml").read_text())
    other["choices"]["kernel_sizes"] = ["3", "3.5", "3.5.7"]
    (tmp_path / "other_space.yaml").write_text(yaml.safe_dump(other))
    doc = yaml.safe_load(config.read_text())
    doc.update(space=str(tmp_path / "other_space.yaml"), supernet={"dir": str(cfg.supernet.dir)})
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(doc))
    assert_user_error(run_cli("supernet", "extract", skeleton, "--config", str(tmp_path / "other.yaml"), "--out",
                              str(out)), "was trained for space 'tiny'")
    doc = yaml.safe_load(config.read_text())
    doc["supernet"] = {**doc["supernet"], "dir": str(cfg.supernet.dir), "expansion_one": "shared"}
    (tmp_path / "shared.yaml").write_text(yaml.safe_dump(doc))
    for command in (["extract", skeleton, "--out", str(out)], ["train"]):
        assert_user_error(run_cli("supernet", *command[:2], "--config", str(tmp_path / "shared.yaml"), *command[2:]),
                          "trained with expansion_one 'own'", "supernet.expansion_one: own")
    doc["supernet"] = {**doc["supernet"], "expansion_one": "own", "kernel_transform": True}
    (tmp_path / "transform.yaml").write_text(yaml.safe_dump(doc))
    assert_user_error(run_cli("supernet", "train", "--config", str(tmp_path / "transform.yaml")),
                      "trained with kernel_transform 'false'", "supernet.kernel_transform: false")


def test_a_search_scores_its_trials_with_the_supernet(trained: tuple, tmp_path: Path,
                                                      digits_dir: Path) -> None:  # noqa: F811 - fixture
    untrained = tiny_config(tmp_path, digits_dir, accuracy={"source": "supernet"})
    assert_user_error(run_cli("run", "--config", str(untrained)), "accuracy.source 'supernet'", "no trained supernet")
    assert not (tmp_path / "out" / "study.db").exists()
    _, cfg, _ = trained
    study = run_search(cfg, show_progress=False)
    done = trials_frame(study)
    done = done[done.state == "COMPLETE"]
    assert len(done) == 4 and set(done.accuracy_source) == {"supernet"} and (done.train_seconds == 0).all()
    ms.set_context(mode=ms.GRAPH_MODE)
    recipe = on_proxy_data(supernet_recipe(cfg), proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir))
    scorer = SupernetScorer(load_supernet(cfg), scoring_images(recipe, 2))
    for row in done.itertuples():
        assert scorer.score(parse_genome(row.genome)) == row.accuracy

    doc = yaml.safe_load(Path(cfg.source).read_text())   # the same supernet, its noise stated
    doc.update(out=str(tmp_path / "noisy"), supernet={**doc["supernet"], "dir": str(cfg.supernet.dir), "noise_sd": 3.0})
    (tmp_path / "noisy.yaml").write_text(yaml.safe_dump(doc))
    proc = run_cli("run", "--config", str(tmp_path / "noisy.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "the held-out sampling error and supernet.noise_sd" in proc.stdout
    noisy = pd.read_csv(tmp_path / "noisy" / "trials.csv")
    noisy = noisy[noisy.state == "COMPLETE"]
    assert set(noisy.noise_sd) == {0.03}
    binomial = (noisy.accuracy * (1 - noisy.accuracy) / noisy.holdout_images) ** 0.5
    assert ((noisy.accuracy_se - (binomial ** 2 + 0.03 ** 2) ** 0.5).abs() < 1e-5).all()


def scipy_tau(x: Any, y: Any) -> float:
    """scipy's Kendall tau-b, 0 (as the report states it) where either ranking is constant."""
    return float(np.nan_to_num(stats.kendalltau(x, y).statistic))


def assert_agreement_recomputed(report: dict, genomes: pd.DataFrame, runs: pd.DataFrame) -> None:
    """The report's agreement figures equal scipy's and numpy's on the per-genome scores the check wrote:
    each supernet's scores (genomes.csv, hits out of the held-out images, printed to 0.01) and each
    genome's reference top-1 (runs.csv, matched by genome)."""
    n = report["holdout_images"]
    printed = np.array([[float(v) for v in row.split()] for row in genomes.supernet_seeds])
    scores = np.round(printed * n / 100) * 100 / n
    assert printed.shape == (report["genomes"], report["supernets"]) and np.abs(printed - scores).max() <= 0.005
    reference = runs[runs.role == "reference"].set_index("genome").loc[genomes.genome]
    assert (reference.holdout_images == n).all() and len(reference) == len(genomes)
    ref = 100 * reference.accuracy.to_numpy()
    means = scores.mean(axis=1)
    assert np.allclose(genomes.supernet_mean, means, rtol=0, atol=1e-9)
    assert report["kendall_tau"] == pytest.approx(scipy_tau(means, ref), abs=1e-12)
    assert report["spearman_rho"] == pytest.approx(np.nan_to_num(stats.spearmanr(means, ref).statistic), abs=1e-12)
    for cost in ("params", "madds"):
        assert report["free_rankings_tau"][cost] == pytest.approx(scipy_tau(genomes[cost], ref))
    supernet = report["supernet"]
    assert supernet["seed_tau"] == pytest.approx(scipy_tau(scores[:, 0], scores[:, 1]))
    # two supernets: one genome's variance between them is half its squared difference
    diff = scores[:, 0] - scores[:, 1]
    assert supernet["run_noise_sd"] == pytest.approx(np.sqrt(np.mean(diff ** 2) / 2), abs=1e-9)
    assert supernet["paired_noise_sd"] == pytest.approx(np.sqrt(np.mean((diff - diff.mean()) ** 2) / 2), abs=1e-9)
    assert supernet["genome_spread_sd"] == pytest.approx(np.std(means, ddof=1))
    assert report["reference"]["genome_spread_sd"] == pytest.approx(np.std(ref, ddof=1))
    assert report["supernet_mean_top1"] == pytest.approx(scores.mean())


def test_supernet_check_reports_agreement_between_supernets_and_with_the_reference(trained: tuple) -> None:
    config, cfg, _ = trained
    assert_user_error(run_cli("supernet", "check", "--config", str(config), "--supernets", "0"), "--supernets 0")
    proc = run_cli("supernet", "check", "--config", str(config), "--genomes", "3", "--sampling", "spread",
                   "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["genomes"] == 3 and report["supernets"] == 2 and report["reference_seeds"] == 1
    assert report["sampling"] == "spread" and set(report["free_rankings_tau"]) == {"params", "madds"}
    genomes = pd.read_csv(cfg.out_dir / "supernet_check" / "genomes.csv")
    assert genomes.madds.iloc[1] < genomes.madds.iloc[2]   # the space's smallest genome, then its largest
    assert_agreement_recomputed(report, genomes, pd.read_csv(cfg.out_dir / "supernet_check" / "runs.csv"))
    assert report["seconds_per_genome"] > 0 and len(report["supernet_train_seconds"]) == 2
    # the first supernet was trained before the check: its time is its epochs' time, not the resume's
    epochs = pd.read_csv(cfg.supernet.dir / "metrics.csv")
    assert epochs.train_seconds.sum() > 1
    assert report["supernet_train_seconds"][0] == pytest.approx(epochs.train_seconds.sum())
    assert any(cfg.out_dir.glob("supernet_seed*/best.ckpt"))
    assert all(Path(p).is_file() for p in report["outputs"])


def test_run_without_prepare_names_what_is_missing_and_the_step_that_makes_it(
        tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811 - fixture
    """A search whose supernet or LUT is missing stops before any work and names ``run --prepare`` (which
    makes both: tests/test_first_run.py runs it, as bare ``python search.py``)."""
    lut = tmp_path / "lut.csv"
    config = tiny_config(tmp_path, digits_dir, accuracy={"source": "supernet"}, trials=2,
                         supernet={"overrides": {"epoch_size": 1}, "calibration_batches": 2},
                         latency={"source": "lut", "lut": str(lut), "backend": "onnxruntime", "resolution": 32,
                                  "warmup": 2, "repeats": 5})
    assert_user_error(run_cli("run", "--config", str(config)), "no trained supernet")
    (tmp_path / "proxy").mkdir()
    proxy = tiny_config(tmp_path / "proxy", digits_dir, latency={"source": "lut", "lut": str(lut)})
    assert_user_error(run_cli("run", "--config", str(proxy)), f"latency.lut '{lut}' not found", "run --prepare")
    assert not lut.exists() and not (tmp_path / "out" / "supernet" / "best.ckpt").exists()
