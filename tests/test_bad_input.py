"""Bad input to every subcommand: one line naming the problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import assert_user_error, run_cli


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
    from trainer.digits import write_digits
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
    ("run bad storage", ["run", "--storage", "oracle://x"], ["storage 'oracle://x'"]),
    ("report unknown study", ["report", "--storage", "sqlite:///{root}/r.db", "--study", "nope", "--out",
                              "{root}/rep"], ["r.db' not found"]),
    ("export unwritable output", ["export", "mixnet_s", "--out", "{blocker}/m.onnx", "--format", "ONNX"],
     ["blocker"]),
    ("export wrong checkpoint", ["export", "mixnet_s", "--out", "{root}/m.mindir", "--ckpt_path", "{not_ckpt}"],
     ["weights.ckpt"]),
]


@pytest.mark.parametrize("name,args,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, args: list[str], fragments: list[str], files: dict[str, Path]) -> None:
    fill = {k: str(v) for k, v in files.items()}
    before = sorted(p.name for p in files["root"].rglob("*"))
    proc = run_cli(*[a.format(**fill) for a in args])
    assert_user_error(proc, *[f.format(**fill) for f in fragments])
    after = sorted(p.name for p in files["root"].rglob("*"))
    assert [p for p in after if p not in before] == []


def test_debug_shows_the_traceback() -> None:
    proc = run_cli("--debug", "decode", "mixnet_xl")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "unknown preset" in proc.stderr
