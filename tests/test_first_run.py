"""A first run as the Quick start has it: bare ``python search.py``, then what its outputs feed (``report``,
``verify --reference``, ``lut check --statistic min``).

The first run is a new process, as a user starts it; the commands after it run in the test's process.
Bare ``search.py`` runs ``run --prepare`` on ``configs/search/supernet_demo.yaml`` of the working folder,
and that config's paths are relative to it too. Run in a folder holding a tiny config under that name
(tests/data/tiny_supernet.yaml: the demo's steps on the two-genome pair space) and the files it names,
it goes the demo's whole way in a minute: LUT, supernet, trials, outputs.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from search.cli import main
from search.commands import DEMO_CONFIG
from search.latency import LatencyCache
from search.latency.lut import LatencyTable
from space import parse_genome
from space.search_space import SearchSpace

DATA = Path(__file__).parent / "data"
TINY = yaml.safe_load((DATA / "tiny_supernet.yaml").read_text())
OUT = Path(TINY["out"])
PAIR = SearchSpace.from_yaml(DATA / "pair_space.yaml")
PAIR_GENOMES = [PAIR.decode_vector(v) for v in itertools.product(*(range(len(d.choices)) for d in PAIR.dimensions))]


def bare_search_py(cwd: Path) -> subprocess.CompletedProcess:
    """``python search.py`` with no arguments in ``cwd``, in the environment a user has (no GLOG_v)."""
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, str(ROOT / "search.py")], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A working folder with the tiny demo config and the files it names, after bare ``python search.py``."""
    assert not Path(DEMO_CONFIG).is_absolute()   # the default config is found in the working folder
    folder = tmp_path_factory.mktemp("first_run")
    for source, name in ((DATA / "tiny_supernet.yaml", DEMO_CONFIG), (ROOT / TINY["space"], TINY["space"]),
                         (ROOT / TINY["proxy"]["config"], TINY["proxy"]["config"])):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / name)
    return folder, bare_search_py(folder)


def test_bare_search_py_builds_the_lut_trains_the_supernet_runs_the_trials_and_writes_the_outputs(
        first_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    folder, proc = first_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = folder / OUT
    # the LUT of the pair space at the config's target, with its calibration genomes (both of the space's)
    table = LatencyTable.load(folder / TINY["latency"]["lut"])
    assert table.space.name == "pair" and table.target.resolution == 32 and table.target.backend == "onnxruntime"
    assert {e.option for e in table.calibration} == {g.to_string() for g in PAIR_GENOMES}
    # one supernet epoch, checkpointed
    assert (out / "supernet" / "best.ckpt").is_file()
    assert len(pd.read_csv(out / "supernet" / "metrics.csv")) == 1
    # the trials: the config's count, scored by the supernet, timed by the LUT
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == TINY["trials"] and set(trials.state) == {"COMPLETE"}
    assert set(trials.accuracy_source.dropna()) == {"supernet"} and trials.baseline[0]
    assert parse_genome(trials.genome[0]) == PAIR.skeleton
    for row in trials.itertuples():
        assert row.latency_ms == pytest.approx(table.predict(parse_genome(row.genome)), rel=1e-9)
        holdout = row.accuracy * row.holdout_images
        assert row.holdout_images == 60 and holdout == pytest.approx(round(holdout))   # 6 of 24 a class held out
    assert trials.genome_key.nunique() == 2 and trials.reused_from.notna().sum() == TINY["trials"] - 2
    front = pd.read_csv(out / "pareto.csv")
    assert not front.empty and set(front.number) <= set(trials.number)
    assert (out / "pareto.png").stat().st_size > 10_000
    assert sorted(p.name for p in (out / "best").iterdir()) == [f"trial_{n:04d}.yaml" for n in sorted(front.number)]
    # the summary: counts, the front against MixNet-S, and last the next step, a command whose genome file exists
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{TINY['trials']} finished trials") and lines[0].endswith(f"outputs in {OUT}")
    step = lines[-1].split()   # today: training a front genome with MindCV's recipe
    assert step[:4] == ["python", "search.py", "train", "--config"]
    assert (folder / step[step.index("--genome") + 1]).is_file()
    # for a person: no library warnings or log lines
    text = proc.stdout + proc.stderr
    assert "Warning" not in text and "[WARNING]" not in text and "Traceback" not in text, text[-3000:]
    assert not [ln for ln in text.splitlines() if ln.startswith("[I ")], text[-3000:]


def command(capsys: pytest.CaptureFixture, *args: str) -> str:
    """``search.py ARGS`` run in this process (as ``main`` runs it, without a new interpreter): its output."""
    status = main(list(args))
    printed = capsys.readouterr()
    assert status == 0, printed.err[-2000:]
    return printed.out


def test_report_regenerates_the_outputs_of_the_stored_study(first_run: tuple[Path, subprocess.CompletedProcess],
                                                            tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder, run = first_run
    out = folder / OUT
    printed = command(capsys, "report", "--storage", f"sqlite:///{out / 'study.db'}", "--study", TINY["study"],
                      "--out", str(tmp_path / "report"))
    assert printed == run.stdout.replace(str(OUT), str(tmp_path / "report"))
    for name in ("trials.csv", "pareto.csv"):
        mine, theirs = pd.read_csv(tmp_path / "report" / name), pd.read_csv(out / name)
        pd.testing.assert_frame_equal(mine.drop(columns="duration_s"), theirs.drop(columns="duration_s"))
    best = sorted((out / "best").iterdir())
    assert [p.read_text() for p in sorted((tmp_path / "report" / "best").iterdir())] == [p.read_text() for p in best]
    assert (tmp_path / "report" / "pareto.png").stat().st_size > 10_000


def test_verify_retrains_the_front_with_the_reference_recipe_given(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = first_run
    reference = yaml.safe_load((DATA / "tiny_reference.yaml").read_text())
    monkeypatch.chdir(folder)   # the default config, as after the first run
    printed = command(capsys, "verify", "--reference", str(DATA / "tiny_reference.yaml"), "--seeds", "1",
                      "--out", str(tmp_path), "--json", "--no-progress")
    front = pd.read_csv(folder / OUT / "pareto.csv")
    table = pd.read_csv(tmp_path / "verified.csv")
    assert set(table.trial) == set(front.number[:1]) | {0} and table.baseline.sum() == 1
    # the given recipe, not the config's (the proxy's 4 epochs long), at the seed below the recipe's own
    assert set(table.reference_epochs) == {reference["epoch_size"]} != {4 * TINY["proxy"]["overrides"]["epoch_size"]}
    runs = pd.read_csv(tmp_path / "verify_runs.csv")
    assert len(runs) == len(table) and set(runs.seed) == {reference["seed"] - 1} and set(runs.role) == {"reference"}
    assert set(runs.holdout_images) == {60}
    by_genome = dict(zip(runs.genome_key, 100 * runs.accuracy))
    for row in table.itertuples():
        assert row.verified_top1 == pytest.approx(by_genome[parse_genome(row.genome).key()])
    shown = pd.DataFrame(json.loads(printed))
    assert list(shown.trial) == list(table.trial)
    assert shown.verified_top1.to_list() == pytest.approx(table.verified_top1.to_list())


def test_lut_check_with_the_min_statistic_scores_the_fastest_runs(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A LUT of the pair space without calibration genomes leaves both genomes held out; the first run's
    latency cache already holds them (the same target and protocol), so the check times no network."""
    folder, _ = first_run
    cache = folder / OUT / "latency_cache.sqlite"
    lut = tmp_path / "lut.csv"
    target = ["--backend", "onnxruntime", "--resolution", "32"]   # and the default protocol, as the first run's
    command(capsys, "lut", "build", "--space", str(DATA / "pair_space.yaml"), *target, "--calibrate", "0",
            "--cache", str(cache), "--out", str(lut), "--no-progress")
    report = json.loads(command(capsys, "lut", "check", "--lut", str(lut), "--space", str(DATA / "pair_space.yaml"),
                                "--genomes", "2", "--statistic", "min", *target, "--cache", str(cache), "--json",
                                "--no-progress"))
    assert report["statistic"] == "min" and report["n"] == 2
    assert report["correction"] == {"scale": 1.0, "offset_ms": 0.0, "calibration_genomes": 0}
    with lut.open() as f:
        next(f)
        rows = list(csv.DictReader(f))
    cached = {row["genome_key"]: row for row in LatencyCache(cache)}
    assert {parse_genome(g["genome"]).key() for g in report["genomes"]} == {g.key() for g in PAIR_GENOMES}
    for genome in report["genomes"]:
        kernels = parse_genome(genome["genome"]).single_genes()[2].kernel_sizes
        terms = [r for r in rows if r["part"] != "network" and (r["layer"] != "2" or
                                                                 r["option"] == "k" + ".".join(map(str, kernels)))]
        assert len(terms) == 6   # stem, three layers, head, classifier
        assert genome["raw_ms"] == pytest.approx(sum(float(r["min_ms"]) for r in terms), rel=1e-9)
        assert genome["raw_ms"] < sum(float(r["median_ms"]) for r in terms)
        assert genome["predicted_ms"] == genome["raw_ms"]
        assert genome["measured_ms"] == cached[parse_genome(genome["genome"]).key()]["min_ms"]
