"""``search.py proxy check`` and ``search.py verify`` on a tiny space and real digits: real training."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, assert_user_error, run_cli
from test_search import digits_dir, tiny_config  # noqa: F401 - the fixture is shared

SMALL = "stem8_head8_w1_d0.1_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3_a1_p1_s2_e1_i8_o8_re,r1_k3_a1_p1_s2_e1_i8_o8_re"
LARGE = ("stem32_head256_w1_d0.1_nc10,r1_k3_a1_p1_s1_e1_i32_o32_re,r1_k3.5_a1_p1_s2_e6_i32_o48_re,"
         "r1_k3.5.7_a1_p1_s2_e6_i48_o64_se0.25_sw_sesw")


def check_config(tmp_path: Path, digits_dir: Path, **changes) -> Path:
    """The tiny search config with a proxy that trains 2 epochs at 16 px on 60 digits a class (full width)."""
    doc = {
        "data": {"dataset": "imagefolder", "data_dir": str(digits_dir), "images_per_class": 60, "holdout": 0.3},
        "proxy": {"config": str(ROOT / "configs" / "train" / "digits.yaml"),
                  "overrides": {"epoch_size": 2, "batch_size": 32, "image_resize": 16, "width": None,
                                "num_parallel_workers": 1, "warmup_epochs": 0, "val_while_train": False}},
        "verify": {"epochs_factor": 1, "seeds": 2}, "trials": 3,
    }
    doc.update(changes)
    return tiny_config(tmp_path, digits_dir, **doc)


@pytest.mark.slow
def test_check_ranks_two_capacity_families_apart_and_reports_noise(tmp_path: Path, digits_dir: Path) -> None:
    """Two genomes of 906 parameters against two of 90,038: every large one ranks above every small
    one under the proxy and the reference, and the run noise is measured."""
    config = check_config(tmp_path, digits_dir)
    specs = [SMALL, LARGE, SMALL.replace("r1_k3_a1_p1_s2_e1_i8_o8_re", "r1_k3.5_a1_p1_s2_e1_i8_o8_re", 1),
             LARGE.replace("r1_k3.5.7_", "r1_k3_", 1)]
    args = ["proxy", "check", "--config", str(config), "--seeds", "2", "--json", "--no-progress"]
    for spec in specs:
        args += ["--genome", spec]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    genomes = pd.read_csv(tmp_path / "out" / "proxy_check" / "genomes.csv")
    small, large = genomes.iloc[[0, 2]], genomes.iloc[[1, 3]]
    assert large.proxy_mean.min() > small.proxy_mean.max()
    assert large.reference_mean.min() > small.reference_mean.max()
    assert report["genomes"] == 4 and report["proxy_seeds"] == 2
    assert report["proxy"]["run_noise_sd"] > 0 and report["proxy"]["spread_to_noise"] > 2
    # params rank the families apart too: every cross-family pair agrees with the reference
    assert report["free_rankings_tau"]["params"] >= 0.3
    text = run_cli(*[a for a in args if a != "--json"]).stdout  # resumes
    assert "rankings that cost nothing params" in text
    printed = re.search(r"     proxy: .* run noise ([0-9.]+) points sd", text).group(1)
    pasted = re.search(r"^noise_sd: ([0-9.]+) +# paste under proxy: in (\S+); measured by: search\.py proxy check "
                       r"--config (\S+) .*--seeds 2", text, re.M)
    assert pasted is not None, text
    assert pasted.group(1) == printed == f"{report['proxy']['run_noise_sd']:.2f}"
    assert pasted.group(2) == pasted.group(3) == str(config)
    assert report["kendall_tau"] >= 2 / 3 and report["top_third_overlap"] == 1.0
    runs = pd.read_csv(tmp_path / "out" / "proxy_check" / "runs.csv")
    assert len(runs) == 4 * 2 + 4 and set(runs.role) == {"proxy", "reference"}
    assert set(runs[runs.role == "proxy"].seed) == {42, 43} and set(runs[runs.role == "reference"].seed) == {41}
    assert (tmp_path / "out" / "proxy_check" / "proxy_check.png").stat().st_size > 10_000

    again = run_cli(*args)
    assert again.returncode == 0 and json.loads(again.stdout)["kendall_tau"] == report["kendall_tau"]
    assert len(pd.read_csv(tmp_path / "out" / "proxy_check" / "runs.csv")) == len(runs)


@pytest.mark.slow
def test_genomes_that_differ_only_by_seed_show_no_signal(tmp_path: Path, digits_dir: Path) -> None:
    """Six copies of one genome, each trained at its own seeds: whatever ranking appears is noise, so the
    check reports a seed-to-seed tau near 0 and a spread between genomes no larger than the noise."""
    config = check_config(tmp_path, digits_dir, verify={"overrides": {"epoch_size": 1}})
    args = ["proxy", "check", "--config", str(config), "--seeds", "2", "--json", "--no-progress"]
    proc = run_cli(*args, *sum((["--genome", SMALL] for _ in range(6)), []))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    runs = pd.read_csv(tmp_path / "out" / "proxy_check" / "runs.csv")
    assert runs[runs.role == "proxy"].seed.nunique() == 12
    reference = set(runs[runs.role == "reference"].seed)   # each copy its own, none a proxy run's
    assert len(reference) == 6 and not reference & set(runs[runs.role == "proxy"].seed)
    assert abs(report["proxy"]["seed_tau"]) <= 0.6
    assert report["proxy"]["run_noise_sd"] > 0 and report["proxy"]["spread_to_noise"] < 1.5


@pytest.mark.parametrize("flags, expected", [
    (["--seeds", "0"], ["--seeds 0"]),
    (["--genomes", "2"], ["--genomes 2"]),
    (["--reference", "{root}/none.yaml"], ["none.yaml", "not found"]),
    (["--sampling", "wide"], ["--sampling wide", "uniform, spread"]),
])
def test_bad_check_input_stops_before_training(tmp_path: Path, digits_dir: Path, flags: list[str],
                                               expected: list[str]) -> None:
    config = check_config(tmp_path, digits_dir)
    flags = [f.replace("{root}", str(tmp_path)) for f in flags]
    assert_user_error(run_cli("proxy", "check", "--config", str(config), *flags), *expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_search_with_paired_seeds_reports_noise_and_verify_retrains_the_front(tmp_path: Path,
                                                                              digits_dir: Path) -> None:
    """Every trial is trained at the same two seeds and stores its per-seed top-1 and standard error;
    the summary gives error bars and a verdict against MixNet-S; verify retrains the front and the
    baseline at two seeds, resumably."""
    import numpy as np

    from search.config import load_search_config
    from search.report import summary, trials_frame, write_outputs
    from search.runner import run_search
    # MAdds, not a timing, as the second objective: the tiny genomes' latencies lie within their timing
    # noise, which decided whether MixNet-S stood alone on the front (then no verdict is printed).
    config = check_config(tmp_path, digits_dir, objectives=["accuracy", "madds"], proxy={
        "config": str(ROOT / "configs" / "train" / "digits.yaml"), "seeds": 2,
        "overrides": {"epoch_size": 1, "batch_size": 32, "image_resize": 16, "num_parallel_workers": 1,
                      "warmup_epochs": 0, "val_while_train": False}})
    cfg = load_search_config(config)
    study = run_search(cfg, show_progress=False)
    trained = [t for t in study.trials if t.state.name == "COMPLETE" and "reused_from" not in t.user_attrs]
    assert trained
    for t in trained:
        a = t.user_attrs
        assert a["proxy_seeds"] == [42, 43] and len(a["accuracy_seeds"]) == 2
        assert a["accuracy"] == pytest.approx(sum(a["accuracy_seeds"]) / 2, abs=1e-6)
        # by hand: binomial error of the mean on the shared held-out images, plus the seeds' spread / sqrt(2)
        mean, n = np.mean(a["accuracy_seeds"]), a["holdout_images"]
        by_hand = math.sqrt(mean * (1 - mean) / n + (np.std(a["accuracy_seeds"], ddof=1) / math.sqrt(2)) ** 2)
        assert a["accuracy_se"] == pytest.approx(by_hand, abs=2e-6)
        assert a["accuracy_se"] >= a["accuracy_se_binomial"] > 0
    front = write_outputs(study, cfg.out_dir, cfg.goal.front_objectives)
    text = summary(trials_frame(study), front, cfg.out_dir)
    assert "+-" in text and "against MixNet-S" in text

    args = ["verify", "--config", str(config), "--no-progress"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(cfg.out_dir / "verified.csv")
    assert table.baseline.sum() == 1 and set(table.trial) >= set(front.number)
    assert all(len(s.split()) == 2 for s in table.verified_seeds)
    assert set(table.verdict.dropna()) <= {"better", "worse", "indistinguishable"}
    assert (cfg.out_dir / "verified.png").stat().st_size > 10_000
    runs = pd.read_csv(cfg.out_dir / "verify_runs.csv")
    assert len(runs) == 2 * len(table) and set(runs.seed) == {41, 40}   # none of the proxy's seeds
    again = run_cli(*args, "--json")
    assert again.returncode == 0 and len(pd.read_csv(cfg.out_dir / "verify_runs.csv")) == len(runs)
    assert [r["verified_top1"] for r in json.loads(again.stdout)] == pytest.approx(list(table.verified_top1))


def test_imagenet_config_is_checked_unchanged_up_to_its_data(tmp_path: Path) -> None:
    """The ImageNet config needs no edit for a proxy check: here it stops at the missing ImageNet tree,
    with one line, before any folder is made."""
    config = tmp_path / "imagenet.yaml"
    doc = yaml.safe_load((ROOT / "configs" / "search" / "imagenet.yaml").read_text())
    config.write_text(yaml.safe_dump({**doc, "out": str(tmp_path / "out")}))
    assert_user_error(run_cli("proxy", "check", "--config", str(config)), "/path/to/imagenet/train", "not found")
    assert not (tmp_path / "out").exists()


def test_standard_errors_match_simulated_runs() -> None:
    """Simulated runs: each one a true accuracy plus training noise, scored on n held-out images. The
    stated errors (one seed with the noise given, three seeds with the noise estimated, and the
    paired difference of two genomes) match the spread of 4,000 simulated measurements within 10%."""
    import numpy as np

    from search.fidelity import accuracy_se, paired_difference
    rng = np.random.default_rng(0)
    n, noise, true_a, true_b = 2000, 0.015, 0.84, 0.82

    def run(true: float, shared: np.ndarray) -> float:
        return float(np.mean(shared < true + rng.normal(0, noise)))

    single, triple, diffs, stated_single, stated_triple, stated_diff = [], [], [], [], [], []
    for _ in range(4000):
        images = rng.random(n)          # one held-out set, shared by every run of this trial
        a = [run(true_a, images) for _ in range(3)]
        b = [run(true_b, images) for _ in range(3)]
        single.append(a[0])
        triple.append(np.mean(a))
        diffs.append(a[0] - b[0])
        stated_single.append(accuracy_se(a[:1], n, noise))
        stated_triple.append(accuracy_se(a, n))
        stated_diff.append(paired_difference(a[:1], b[:1], n, noise)[1])
    assert np.mean(stated_single) == pytest.approx(np.std(single), rel=0.1)
    assert np.mean(stated_triple) == pytest.approx(np.std(triple), rel=0.1)
    assert np.mean(stated_diff) == pytest.approx(np.std(diffs), rel=0.15)


def test_paired_noise_leaves_out_each_runs_shift_and_states_the_paired_error() -> None:
    """Simulated supernets: each scores every genome shifted by its own offset (sd 5 points) plus 2 points
    of noise per genome. The plain run noise takes the shift in; the paired noise recovers the 2 points,
    and stated as one run's noise it gives the paired difference of two genomes in one supernet the error
    their simulated differences show."""
    import numpy as np

    from search.fidelity import paired_difference, paired_noise, run_noise
    rng = np.random.default_rng(3)
    truth = rng.normal(70, 4, 40)
    scores = truth[:, None] + rng.normal(0, 5, (1, 400)) + rng.normal(0, 2, (40, 400))
    assert run_noise(scores) > 4
    assert paired_noise(scores) == pytest.approx(2.0, rel=0.05)
    one = [paired_noise(scores[:12, i:i + 2]) for i in range(0, 400, 2)]   # what a check of 12 genomes x 2 states
    assert np.median(one) == pytest.approx(2.0, rel=0.15)
    stated = paired_difference([0.7], [0.7], 10 ** 12, paired_noise(scores) / 100)[1] * 100
    assert stated == pytest.approx(np.std(scores[1] - scores[0]), rel=0.1)


def test_kendall_taus_equal_scipys_tau_b_with_ties() -> None:
    import numpy as np
    from scipy.stats import kendalltau

    from search.ranking import kendall_taus
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 5, (50, 12)).astype(float), rng.integers(0, 5, (50, 12)).astype(float)
    x[0], y[1] = 3.0, 2.0                       # constant rows: tau 0 here, undefined for scipy
    ours = kendall_taus(x, y)
    assert ours[0] == ours[1] == 0.0
    for i in range(2, 50):
        assert ours[i] == pytest.approx(kendalltau(x[i], y[i]).statistic, abs=1e-12)


def test_tau_interval_covers_the_population_tau_of_simulated_checks() -> None:
    """Simulated checks of 12 genomes: true accuracies spread 1.6 points, a reference of two seeds
    with 1.5 points of run noise, and a proxy that sees the truth. The 90% bootstrap interval of each
    check's tau holds the population tau of the proxy against the reference in at least 80% of
    checks, and intervals narrow with more genomes."""
    import numpy as np

    from search.fidelity import fidelity
    rng = np.random.default_rng(1)
    population = 2 / np.pi * np.arcsin(np.sqrt(1.6 ** 2 / (1.6 ** 2 + 1.5 ** 2 / 2)))
    covered, widths = 0, {12: [], 48: []}
    for i in range(300):
        n = 48 if i % 10 == 0 else 12
        true = rng.normal(88, 1.6, n)
        low, high = fidelity(true[:, None], true[:, None] + rng.normal(0, 1.5, (n, 2)))["kendall_tau_interval"]
        widths[n].append(high - low)
        covered += n == 12 and low <= population <= high
    assert covered / 270 >= 0.8
    assert np.mean(widths[48]) < 0.6 * np.mean(widths[12])


def test_verify_max_genomes_keeps_the_fronts_ends_and_spreads_the_rest() -> None:
    from search.verify import spread_along
    front = pd.DataFrame({"latency_ms": [5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0], "number": range(7)})
    assert spread_along(front, 3).latency_ms.tolist() == [1.0, 4.0, 7.0]
    assert spread_along(front, 1).latency_ms.tolist() == [1.0]
    assert len(spread_along(front, None)) == len(spread_along(front, 9)) == 7
