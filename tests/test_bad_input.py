"""Bad input to every subcommand: one line naming the problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import assert_user_error, run_cli

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A few files to point commands at: a non-checkpoint, a regular file used as a folder, bad YAML."""
    root = tmp_path_factory.mktemp("bad")
    not_ckpt = root / "weights.ckpt"
    not_ckpt.write_text("this is not a checkpoint")
    blocker = root / "blocker"
    blocker.write_text("a file where a folder is expected")
    bad_yaml = root / "bad.yaml"
    bad_yaml.write_text("epoch_size: [1,\n")
    empty = root / "empty"
    (empty / "train").mkdir(parents=True)
    from trainer.bundled import write_digits
    digits = write_digits(root / "digits", size=16)
    return {"root": root, "not_ckpt": not_ckpt, "blocker": blocker, "bad_yaml": bad_yaml, "empty": empty,
            "digits": digits}


CASES = [
    ("decode malformed genome", ["decode", "r1_k3.4_a1_p1_s11_e1_i16_o16"], ["token 'k3.4'"]),
    ("decode wrong type", ["decode", "mixnet_s", "--resolution", "big"], ["invalid int value: 'big'"]),
    ("profile unknown backend", ["profile", "mixnet_s", "--backend", "tensorrt"], ["tensorrt"]),
    ("profile absent device", ["profile", "mixnet_s", "--backend", "mindspore", "--device", "Ascend"], ["Ascend"]),
    ("lut check missing table", ["lut", "check", "--lut", "{root}/none.csv", "--space",
                                 "configs/space/mixnet_s.yaml", "--genomes", "2"], ["none.csv"]),
    ("lut build unwritable output", ["lut", "build", "--space", "configs/space/mixnet_s.yaml", "--backend",
                                     "onnxruntime", "--device", "CPU", "--out", "{blocker}/lut.csv"], ["blocker"]),
    ("train missing data_dir", ["train", "--config", "configs/train/digits.yaml", "--data_dir", "{root}/nowhere",
                                "--epoch_size", "1"], ["nowhere"]),
    ("train empty split", ["train", "--config", "configs/train/digits.yaml", "--data_dir", "{empty}",
                           "--epoch_size", "1"], ["class"]),
    ("train unknown key", ["train", "--config", "configs/train/digits.yaml", "--epochs_size", "1"],
     ["epochs_size"]),
    ("train bad yaml", ["train", "--config", "{bad_yaml}"], ["bad.yaml"]),
    ("validate not a checkpoint", ["validate", "--config", "configs/train/digits.yaml", "--data_dir", "{digits}",
                                   "--ckpt_path", "{not_ckpt}"], ["weights.ckpt"]),
    ("data unwritable output", ["data", "digits", "--out", "{blocker}/digits"], ["blocker"]),
    ("run missing config", ["run", "--config", "{root}/none.yaml"], ["none.yaml", "not found"]),
    ("run bad storage", ["run", "--config", "{search}", "--storage", "oracle://x"], ["storage 'oracle://x'"]),
    ("run mnas.w", ["run", "--config", "{search}"], ["mnas.w 0.5"],
     {"mode": "mnas", "mnas": {"target_ms": 10, "w": 0.5}}),
    ("run mnas.hard", ["run", "--config", "{search}"], ["mnas.hard 'yes'"], {"mnas": {"hard": "yes"}}),
    ("run objectives in mnas mode", ["run", "--config", "{search}"],
     ["objectives ['accuracy', 'params']", "mode 'mnas'", "set mode: pareto"],
     {"mode": "mnas", "mnas": {"target_ms": 10}, "objectives": ["accuracy", "params"]}),
    ("run mnas.target_ms in pareto mode", ["run", "--config", "{search}"],
     ["mnas.target_ms 10", "mode 'pareto' does not use the mnas section", "set mode: mnas"],
     {"mnas": {"target_ms": 10}}),
    ("run negative images_per_class", ["run", "--config", "{search}"], ["data.images_per_class", "-3"],
     {"data": {"images_per_class": -3}}),
    ("run string images_per_class", ["run", "--config", "{search}"], ["data.images_per_class", "'many'"],
     {"data": {"images_per_class": "many"}}),
    ("run non-string space", ["run", "--config", "{search}"], ["space 5"], {"space": 5}),
    ("run non-string out", ["run", "--config", "{search}"], ["out ['a']"], {"out": ["a"]}),
    ("run lut file missing", ["run", "--config", "{search}"], ["none.csv' not found"],
     {"latency": {"source": "lut", "lut": "{root}/none.csv"}}),
    ("run lut bad threads", ["run", "--config", "{search}"], ["latency", "threads 0"],
     {"latency": {"source": "lut", "lut": "{root}/none.csv", "threads": 0}}),
    ("run lut unknown backend", ["run", "--config", "{search}"], ["unknown backend 'tensorrt'"],
     {"latency": {"source": "lut", "lut": "{root}/none.csv", "backend": "tensorrt"}}),
    ("run lut bad repeats", ["run", "--config", "{search}"], ["repeats 1"],
     {"latency": {"source": "lut", "lut": "{root}/none.csv", "repeats": 1}}),
    ("run lut with a timing key", ["run", "--config", "{search}"],
     ["latency.min_span_s 3 is not used with latency.source 'lut'"],
     {"latency": {"source": "lut", "lut": "{root}/none.csv", "min_span_s": 3}}),
    ("run measured with a lut", ["run", "--config", "{search}"],
     ["latency.lut '{root}/none.csv' is not used with latency.source 'measured'"],
     {"latency": {"lut": "{root}/none.csv"}}),
    ("run absent latency device", ["run", "--config", "{search}"], ["device 'Ascend' is not present"],
     {"latency": {"backend": "mindspore", "device": "Ascend"}}),
    ("run remote unreachable queue", ["run", "--config", "{search}"], ["latency queue", "cannot be opened"],
     {"latency": {"source": "remote", "remote": "postgresql+psycopg2://nobody@127.0.0.1:1/x"}}),
    ("run remote over a journal", ["run", "--config", "{search}", "--storage", "{root}/study.log"],
     ["journal file", "latency.remote"], {"latency": {"source": "remote"}}),
    ("run bad proxy recipe", ["run", "--config", "{search}"], ["proxy", "epochs_size"],
     {"proxy": {"overrides": {"epochs_size": 1}}}),
    ("run device listed twice", ["run", "--config", "{search}"], ["devices [0, 0]", "device 0 is listed twice"],
     {"devices": [0, 0], "workers": 2}),
    ("run device not an integer", ["run", "--config", "{search}"], ["devices [0, 'one']", "'one' is not a device id"],
     {"devices": [0, "one"], "workers": 2}),
    ("run more devices than the host", ["run", "--config", "{search}"], ["devices [0, 4096]", "device 4096 is not on"],
     {"devices": [0, 4096], "workers": 2}),
    ("run devices on an absent target", ["run", "--config", "{search}"], ["devices [0]", "no Ascend device"],
     {"devices": [0], "proxy": {"overrides": {"epoch_size": 1, "device_target": "Ascend"}}}),
    ("train device TPU", ["train", "--config", "configs/train/digits.yaml", "--data_dir", "{digits}",
                          "--device_target", "TPU"], ["device_target 'TPU'", "CPU, GPU, Ascend"]),
    ("train absent Ascend", ["train", "--config", "configs/train/digits.yaml", "--data_dir", "{digits}",
                             "--device_target", "Ascend", "--ckpt_save_dir", "{root}/ckpt"],
     ["device_target 'Ascend' is not present"]),
    ("train aux_factor", ["train", "--config", "configs/train/digits.yaml", "--aux_factor", "0.4"],
     ["aux_factor 0.4", "no auxiliary head"]),
    ("decode a directory", ["decode", "{root}"], ["is a directory"]),
    ("train genome a directory", ["train", "--config", "configs/train/digits.yaml", "--data_dir", "{digits}",
                                  "--genome", "{empty}"],
     ["is a directory"]),
    ("report unknown study", ["report", "--storage", "sqlite:///{root}/r.db", "--study", "nope", "--out",
                              "{root}/rep"], ["r.db' not found"]),
    ("proxy check on missing ImageFolder data", ["proxy", "check", "--config", "{search}"],
     ["{root}/nowhere/train", "not found"], {"data": {"dataset": "imagefolder", "data_dir": "{root}/nowhere"}}),
    ("proxy check reference seeds below 0", ["proxy", "check", "--config", "{search}", "--reference-seeds", "2"],
     ["reference recipe seed 1", "reach -1", "seed >= 2"], {"verify": {"overrides": {"seed": 1}}}),
    ("proxy check unknown verify key", ["proxy", "check", "--config", "{search}"], ["verify", "epochs"],
     {"verify": {"epochs": 3}}),
    ("verify without a study", ["verify", "--config", "{search}"], ["study.db' not found"]),
    ("verify zero seeds", ["verify", "--config", "{search}", "--seeds", "0"], ["--seeds 0"]),
    ("verify zero genomes", ["verify", "--config", "{search}"], ["verify.max_genomes 0", ">= 1"],
     {"verify": {"max_genomes": 0}}),
    ("supernet scored on no images", ["supernet", "check", "--config", "{search}"], ["supernet.score_images 0"],
     {"supernet": {"score_images": 0}}),
    ("supernet scored in steps of no images", ["supernet", "check", "--config", "{search}"],
     ["supernet.score_batch 0"], {"supernet": {"score_batch": 0}}),
    ("supernet noise in percent", ["supernet", "train", "--config", "{search}"], ["supernet.noise_sd 250",
     "'search.py supernet check'"], {"supernet": {"noise_sd": 250}}),
    ("supernet unknown expansion one", ["supernet", "train", "--config", "{search}"],
     ["supernet.expansion_one 'separate'", "own, shared"], {"supernet": {"expansion_one": "separate"}}),
    ("supernet kernel transform not a switch", ["supernet", "train", "--config", "{search}"],
     ["supernet.kernel_transform 'yes'"], {"supernet": {"kernel_transform": "yes"}}),
    ("run unknown pruner", ["run", "--config", "{search}"], ["pruner.type 'hyperband'", "none, mo_halving"],
     {"pruner": {"type": "hyperband"}}),
    ("run pruner eta 1", ["run", "--config", "{search}"], ["pruner.eta 1", ">= 2"],
     {"pruner": {"type": "mo_halving", "eta": 1}}),
    ("run pruner rungs unordered", ["run", "--config", "{search}"], ["pruner.rungs [3, 1]"],
     {"pruner": {"type": "mo_halving", "rungs": [3, 1]}}),
    ("run pruner in mnas mode", ["run", "--config", "{search}"], ["'mo_halving' is for mode 'pareto'"],
     {"pruner": {"type": "mo_halving"}, "mode": "mnas", "mnas": {"target_ms": 10}}),
    ("run pruner on supernet scores", ["run", "--config", "{search}"], ["accuracy.source 'supernet' trains nothing"],
     {"pruner": {"type": "mo_halving"}, "accuracy": {"source": "supernet"}}),
    ("export unwritable output", ["export", "mixnet_s", "--out", "{blocker}/m.onnx", "--format", "ONNX"],
     ["blocker"]),
    ("export wrong checkpoint", ["export", "mixnet_s", "--out", "{root}/m.mindir", "--ckpt_path", "{not_ckpt}"],
     ["weights.ckpt"]),
]


def search_config(path: Path, root: Path, changes: dict) -> Path:
    """A search YAML whose data and outputs would land under ``root`` (so any write is seen), plus ``changes``."""
    doc = {"space": str(DATA / "tiny_space.yaml"), "out": str(root / "search"), "trials": 2,
           "data": {"data_dir": str(root / "search-digits")},
           "proxy": {"config": "configs/train/digits.yaml", "overrides": {"epoch_size": 1}}}
    for key, value in changes.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and isinstance(doc.get(key), dict) else value
    text = yaml.safe_dump(doc).replace("{root}", str(root))
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case: tuple, files: dict[str, Path], tmp_path: Path) -> None:
    _name, args, fragments, *changes = case
    fill = {k: str(v) for k, v in files.items()}
    fill["search"] = str(search_config(tmp_path / "search.yaml", files["root"], changes[0] if changes else {}))
    before = sorted(p.name for p in files["root"].rglob("*"))
    proc = run_cli(*[a.format(**fill) for a in args])
    assert_user_error(proc, *[f.format(**fill) for f in fragments])
    after = sorted(p.name for p in files["root"].rglob("*"))
    assert [p for p in after if p not in before] == []


def test_failing_workers_report_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    """Every trial fails inside the two workers (the proxy batch exceeds its images): one line, exit 2."""
    cfg = search_config(tmp_path / "search.yaml", tmp_path, {
        "workers": 2, "trials": 4, "baseline": False,
        "latency": {"resolution": 32, "warmup": 0, "repeats": 5, "min_span_s": 0},
        "data": {"classes": 2, "images_per_class": 10},
        "proxy": {"overrides": {"epoch_size": 1, "batch_size": 512}}})
    proc = run_cli("run", "--config", str(cfg))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "SpawnProcess" not in proc.stderr
    messages = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error", "internal error"))]
    assert len(messages) == 1 and messages[0] == proc.stderr.strip().splitlines()[-1], proc.stderr
    assert "2 of 2 workers stopped" in messages[0] and "batch_size 512 is larger than" in messages[0]


def test_debug_shows_the_traceback() -> None:
    proc = run_cli("--debug", "decode", "mixnet_xl")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "unknown preset" in proc.stderr


def test_the_mixnas_console_script_is_search_py(files: dict[str, Path], tmp_path: Path) -> None:
    """``mixnas`` (installed with the package) runs the same CLI: the same commands and the same one-line errors."""
    mixnas = Path(sys.executable).with_name("mixnas")
    assert mixnas.is_file(), "the package's console script is not installed"
    env = dict(os.environ, GLOG_v="3")
    helps = [subprocess.run([*cmd, "--help"], capture_output=True, text=True, env=env).stdout
             for cmd in ([str(mixnas)], [sys.executable, "search.py"])]
    assert helps[0].replace("mixnas", "search.py") == helps[1] and "usage: mixnas" in helps[0]
    cfg = search_config(tmp_path / "search.yaml", files["root"], {"pruner": {"type": "mo_halving", "min_epochs": 0}})
    proc = subprocess.run([str(mixnas), "run", "--config", str(cfg)], capture_output=True, text=True, env=env)
    assert_user_error(proc, "pruner.min_epochs 0", ">= 1")
