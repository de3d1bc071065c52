"""Training config: MindCV's keys and files, overrides, unknown keys, bad values (no MindSpore compile)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT, assert_user_error, run_cli
from space.basics.errors import UsageError
from trainer.config import KEYS, load_config

DATA = Path(__file__).parent / "data"


def mindcv_yaml(variant: str) -> Path:
    """MindCV 0.3.0's own recipe file ``configs/mixnet/mixnet_<variant>_ascend.yaml``, kept in tests/data."""
    return DATA / f"mindcv_mixnet_{variant}_ascend.yaml"


@pytest.mark.parametrize("variant", ["s", "m", "l"])
def test_recipe_matches_mindcv_key_by_key(variant: str) -> None:
    ours = load_config(ROOT / "configs" / "train" / f"mixnet_{variant}.yaml").to_dict()
    theirs = load_config(mindcv_yaml(variant)).to_dict()
    assert ours.keys() == theirs.keys()
    differ = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert differ == {}


def test_mixnet_s_recipe_values() -> None:
    cfg = load_config(ROOT / "configs" / "train" / "mixnet_s.yaml")
    assert (cfg.batch_size, cfg.epoch_size, cfg.lr, cfg.min_lr) == (128, 600, 0.2, 1e-5)
    assert (cfg.warmup_epochs, cfg.decay_epochs, cfg.opt, cfg.momentum) == (15, 585, "momentum", 0.9)
    assert (cfg.weight_decay, cfg.loss_scale, cfg.amp_level, cfg.label_smoothing) == (2e-5, 256.0, "O3", 0.1)
    assert (cfg.auto_augment, cfg.re_prob, cfg.mixup, cfg.cutmix, cfg.cutmix_prob) == \
        ("randaug-m9-mstd0.5", 0.25, 0.2, 1.0, 0.0)
    assert cfg.scale == [0.08, 1.0] and cfg["interpolation"] == "bicubic" and cfg.distribute is True


def test_mixnet_l_recipe_uses_dynamic_loss_scale() -> None:
    cfg = load_config(ROOT / "configs" / "train" / "mixnet_l.yaml")
    assert (cfg.loss_scale_type, cfg.drop_overflow_update, cfg.loss_scale) == ("dynamic", True, 16777216.0)
    assert cfg.auto_augment == "randaug-m9-mstd0.5-inc1" and cfg.cutmix_prob == 1.0


def test_defaults_are_mindcvs() -> None:
    cfg = load_config()
    assert len(cfg) == len(KEYS)
    assert (cfg.opt, cfg.lr, cfg.weight_decay, cfg.warmup_epochs, cfg.decay_epochs) == ("adam", 0.001, 1e-6, 3, 100)
    assert (cfg.train_split, cfg.val_split, cfg.cutmix_prob, cfg.ema_decay, cfg.clip_value) == \
        ("train", "val", 1.0, 0.9999, 15.0)
    assert cfg.weight_decay_filter == "disable" and cfg.loss_scale_type == "fixed"


def test_overrides_parse_command_line_strings() -> None:
    cfg = load_config(ROOT / "configs" / "train" / "mixnet_s.yaml",
                      {"epoch_size": "3", "lr": "0.05", "distribute": "False", "scale": "0.5,1.0",
                       "auto_augment": "null", "ratio": "[0.9, 1.1]", "genome": "mixnet_m", "width": "0.5"})
    assert (cfg.epoch_size, cfg.lr, cfg.distribute, cfg.auto_augment) == (3, 0.05, False, None)
    assert cfg.scale == [0.5, 1.0] and cfg.ratio == [0.9, 1.1]
    assert cfg.genome == "mixnet_m" and cfg.width == 0.5
    assert cfg.replace(lr=0.3).lr == 0.3 and cfg.lr == 0.05
    with pytest.raises(AttributeError):
        cfg.lr = 1.0


def test_unknown_keys_list_close_matches(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 0.1\nwarmup_epoch: 3\n")
    with pytest.raises(UsageError, match=r"bad.yaml: unknown key 'warmup_epoch' - did you mean warmup_epochs"):
        load_config(bad)
    with pytest.raises(UsageError, match=r"unknown key 'lable_smoothing' - did you mean label_smoothing"):
        load_config(None, {"lable_smoothing": 0.1})


@pytest.mark.parametrize("key, value, fragment", [
    ("batch_size", "zero", "batch_size 'zero' - must be an integer"),
    ("batch_size", 0, "batch_size 0 - must be an integer >= 1"),
    ("opt", "lamb", "opt 'lamb' - must be one of momentum, sgd"),
    ("amp_level", "O4", "amp_level 'O4' - must be one of O0, O1, O2, O3"),
    ("scale", "0.5", "scale '0.5' - must be two numbers"),
    ("hflip", 1.5, "hflip 1.5 - must be a number in [0, 1]"),
    ("auto_augment", "autoaug-mstd0.5", "only RandAugment policies are supported"),
    ("auto_augment", "randaug-m9-x3", "unknown section 'x3'"),
    ("pretrained", True, "give a checkpoint file with ckpt_path"),
    ("drop_path_rate", 0.1, "MixNet has no stochastic depth"),
])
def test_bad_values_name_the_key(key: str, value: object, fragment: str) -> None:
    with pytest.raises(UsageError, match=re.escape(fragment)):
        load_config(None, {key: value})


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="config file .* not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [0.1\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- lr\n")
    with pytest.raises(UsageError, match="must hold a mapping"):
        load_config(listed)


def test_cli_rejects_unknown_option_with_close_matches() -> None:
    proc = run_cli("train", "--config", "configs/train/digits.yaml", "--warmup", "3")
    assert_user_error(proc, "unknown option '--warmup'", "--warmup_epochs")


def test_cli_missing_data_dir_and_bad_value(tmp_path: Path) -> None:
    proc = run_cli("train", "--config", "configs/train/digits.yaml", "--data_dir", str(tmp_path / "nowhere"))
    assert_user_error(proc, "data_dir", "nowhere", "not found")
    proc = run_cli("train", "--config", "configs/train/digits.yaml", "--batch_size", "-4")
    assert_user_error(proc, "batch_size -4", ">= 1")
