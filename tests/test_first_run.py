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
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from search.cli import build_parser, main, subcommands
from search.commands import DEMO_CONFIG
from search.latency import LatencyCache
from search.latency.lut import LatencyTable
from search.report import summary, trials_frame, write_outputs
from search.verify import verified_table
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


@pytest.mark.slow
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
    lines = proc.stdout.splitlines()
    # first the plan: each phase with its estimated time (all to do in a new folder), then the outputs
    assert lines[0].startswith("plan (estimates: this project's times measured on 2 cores")
    with (folder / TINY["latency"]["lut"]).open() as f:
        timed = len(f.readlines()) - 2   # a meta line, a header, then a row a part or calibration genome
    per_class = TINY["data"]["images_per_class"]
    n_holdout = 10 * round(per_class * TINY["data"]["holdout"])   # 10 digit classes
    n_train = 10 * per_class - n_holdout
    phases = [f"latency table: {timed} parts timed on onnxruntime CPU at 32 px -> {TINY['latency']['lut']}",
              f"supernet: 1 epoch on {n_train} images -> {OUT / 'supernet'}",
              f"search: {TINY['trials']} trials on 1 worker, each scoring {n_holdout} held-out images",
              f"in all; then the outputs: trials.csv, pareto.csv, pareto.png and best/ in {OUT}"]
    for line, phase in zip(lines[1:5], phases):
        assert re.fullmatch(r"  (under 1 min|about \d+ min) +" + re.escape(phase), line), (line, phase)
    # after training the supernet: MixNet-S's score with BatchNorm recalibrated, the number the search gave it;
    # no per-epoch validation of the supernet (its mixture BatchNorm statistics score near chance)
    score = re.fullmatch(r"supernet trained in \d+ s \(1 epoch, \d+ img/s\); MixNet-S sub-network scores "
                         rf"([\d.]+)% on {n_holdout} held-out images \(BatchNorm recalibrated\); "
                         + re.escape(str(OUT / "supernet")), lines[5])
    assert score and score.group(1) == f"{100 * trials.accuracy[0]:.2f}", lines[5]
    assert "val top-1" not in proc.stderr and "training mixnet_" in proc.stderr
    # what each phase took, and in all
    span = r"((?:\d+ min )?\d+ s)"
    took = re.fullmatch(rf"took {span}: latency table {span}, supernet {span}, trials on 1 worker {span}", lines[6])
    seconds = [sum(int(n) * (60 if unit == "min" else 1) for n, unit in re.findall(r"(\d+) (min|s)", s))
               for s in took.groups()] if took else []
    assert took and abs(seconds[0] - sum(seconds[1:])) <= 2, lines[6]
    # the summary: counts, the front against MixNet-S, and last the next step: verify, with its expected time
    assert lines[7].startswith(f"{TINY['trials']} finished trials") and lines[7].endswith(f"outputs in {OUT}")
    assert lines[-2].startswith("next: retrain the front and MixNet-S with the reference recipe")
    # the front's first genome (verify.max_genomes: 1) and MixNet-S, once if the front's is MixNet-S
    runs = len({trials.set_index("number").genome_key[n] for n in (front.number[0], 0)}) * TINY["verify"]["seeds"]
    epochs = TINY["proxy"]["overrides"]["epoch_size"] * TINY["verify"]["epochs_factor"]
    assert re.fullmatch(rf"  python search\.py verify --config {re.escape(DEMO_CONFIG)}   # "
                        rf"(under 1 min|about \d+ min) \(estimate: {runs} reference runs of {epochs} epochs on "
                        rf"{n_train} images\)", lines[-1])
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
    storage = f"sqlite:///{out / 'study.db'}"
    printed = command(capsys, "report", "--storage", storage, "--study", TINY["study"], "--out",
                      str(tmp_path / "report"))
    summary_of_run = run.stdout[run.stdout.index(f"{TINY['trials']} finished trials"):]
    *same, step = printed.splitlines()   # the run's summary; the verify command names the storage, not a config
    assert same == summary_of_run.replace(str(OUT), str(tmp_path / "report")).splitlines()[:-1]
    assert step == (f"  python search.py verify --config SEARCH_CONFIG.yaml --storage {storage} "
                    f"--study {TINY['study']} --out {tmp_path / 'report'}")
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


def test_the_summary_names_a_genome_to_train_only_after_verify_by_the_rule_it_states(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    """Before verify the next step is verify; after, the fastest verified genome more accurate than MixNet-S or
    within noise of it that is still on the front (its best/ file), else MixNet-S itself. verify's own table
    function makes verified.csv from hand-made seed scores."""
    folder, _ = first_run
    study = optuna.load_study(study_name=TINY["study"], storage=f"sqlite:///{folder / OUT / 'study.db'}")
    front = write_outputs(study, tmp_path, ["accuracy", "latency_ms"])
    frame = trials_frame(study)
    assert summary(frame, front, tmp_path, "python search.py verify --config X").splitlines()[-1] == \
        "  python search.py verify --config X"
    # trial: latency ms, seed scores in percent, and verify's verdict against MixNet-S (trial 0) on 2,000 images
    trials = {0: (0.05, [50.0, 51.0], None), 5: (0.01, [40.0, 41.0], "worse"), 11: (0.015, [60.0, 61.0], "better"),
              7: (0.02, [50.2, 51.1], "indistinguishable"), 3: (0.04, [60.0, 61.2], "better")}
    for number in (5, 7):   # 11 is no longer on the front: no best/ file
        shutil.copy(tmp_path / "best" / "trial_0003.yaml", tmp_path / "best" / f"trial_{number:04d}.yaml")

    def verified(rows: dict) -> list[str]:
        """The summary's last two lines with verify's table of ``rows`` in verified.csv."""
        chosen = pd.DataFrame([{"number": n, "baseline": n == 0, "pareto": n != 0, "latency_ms": latency, "params": 1,
                                "madds": 1, "accuracy": 0.5, "accuracy_se": None, "genome": "g"}
                               for n, (latency, _, _) in rows.items()])
        table = verified_table(chosen, np.array([scores for _, scores, _ in rows.values()]), 2000, 4)
        assert list(table.verdict[1:]) == [word for _, _, word in rows.values()][1:]
        table.to_csv(tmp_path / "verified.csv", index=False)
        return summary(frame, front, tmp_path, "python search.py verify --config X").splitlines()[-2:]

    rule, step = verified(trials)
    assert rule == ("train the fastest front genome verified as more accurate than MixNet-S or within noise of it "
                    "(verified.csv, 2 s.e.), with MindCV's ImageNet recipe:")
    assert step == (f"  python search.py train --config configs/train/mixnet_s.yaml --genome "
                    f"{tmp_path / 'best' / 'trial_0007.yaml'} --data_dir /path/to/imagenet")
    rule, step = verified({n: trials[n] for n in (0, 5, 11)})
    assert rule == ("no front genome is verified as more accurate than MixNet-S or within noise of it (verified.csv, "
                    "2 s.e.): train MixNet-S itself, with MindCV's ImageNet recipe:")
    assert step == "  python search.py train --config configs/train/mixnet_s.yaml --data_dir /path/to/imagenet"


def test_help_lists_the_commands_by_job_and_every_command_shows_an_example_that_parses() -> None:
    from test_docs_commands import parse_error
    parser = build_parser()
    top = parser.format_help()
    groups: dict[str, list[str]] = {}
    for line in top[top.index("\nsearch:\n") + 1:top.index("\noptions:\n")].splitlines():
        if line.endswith(":"):
            groups[line[:-1]] = []
        else:
            groups[list(groups)[-1]].append(line.split()[0])
    assert groups == {"search": ["run", "report", "verify", "proxy", "supernet"], "genomes": ["decode", "export"],
                      "training": ["train", "validate", "data"], "latency": ["profile", "lut", "latency", "mindir"]}
    commands = subcommands(parser)
    assert {name for name in commands if " " not in name} == {n for names in groups.values() for n in names}
    assert {"lut build", "supernet extract", "data animals"} <= set(commands)
    for words, sub in commands.items():
        text = sub.format_help()
        assert "\nexample:\n  python search.py " in text, words
        example = shlex.split(text.split("\nexample:\n  ", 1)[1].splitlines()[0])[2:]
        assert example[:len(words.split())] == words.split() and parse_error(parser, example) is None, (words, example)
