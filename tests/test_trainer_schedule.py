"""Learning-rate schedule: per-step linear warmup then cosine decay, checked against hand computation."""

from __future__ import annotations

import math

import pytest

from conftest import ROOT
from trainer.config import load_config
from trainer.schedule import lr_schedule


def test_mixnet_s_schedule_at_chosen_steps() -> None:
    cfg = load_config(ROOT / "configs" / "train" / "mixnet_s.yaml")
    spe = 1251  # ImageNet's 1,281,167 images / (8 x 128), drop_remainder
    lrs = lr_schedule(cfg, spe)
    assert len(lrs) == 600 * spe
    peak, floor, warm, decay = 0.2, 1e-5, 15 * spe, 585 * spe
    assert lrs[0] == 0.0
    assert lrs[1] == pytest.approx(peak * 1 / warm)
    assert lrs[7 * spe + 100] == pytest.approx(peak * (7 * spe + 100) / warm)
    assert lrs[warm - 1] == pytest.approx(peak * (warm - 1) / warm)
    assert lrs[warm] == pytest.approx(peak)
    for step in (warm + 1, warm + 12345, warm + decay // 2, len(lrs) - 1):
        t = (step - warm) / decay
        assert lrs[step] == pytest.approx(floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * t)), rel=1e-12)
    assert lrs[warm + decay // 2] == pytest.approx((peak + floor) / 2, rel=1e-4)
    assert min(lrs[warm:]) > floor


def test_stair_cycles_and_floor() -> None:
    cfg = load_config(None, {"lr": 1.0, "min_lr": 0.1, "epoch_size": 10, "warmup_epochs": 2, "decay_epochs": 3,
                             "num_cycles": 2, "cycle_decay": 0.5, "warmup_factor": 0.1, "lr_epoch_stair": True})
    lrs = lr_schedule(cfg, 4)
    assert lrs[0:4] == [pytest.approx(0.1)] * 4
    assert lrs[4] == pytest.approx(0.1 + 0.9 * 0.5)
    assert lrs[8] == pytest.approx(1.0)
    assert lrs[8 + 4] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 3)))
    assert lrs[8 + 12] == pytest.approx(0.5)
    assert lrs[8 + 24:] == [pytest.approx(0.1)] * 8


def test_null_decay_epochs_fills_the_run() -> None:
    cfg = load_config(ROOT / "configs" / "train" / "digits.yaml", {"epoch_size": 3, "warmup_epochs": 1})
    lrs = lr_schedule(cfg, 10)
    assert cfg.effective_decay_epochs == 2
    assert lrs[10] == pytest.approx(cfg.lr)
    assert lrs[-1] == pytest.approx(cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * 19 / 20)))


def test_matches_mindcv_scheduler() -> None:
    factory = pytest.importorskip("mindcv.scheduler")
    cfg = load_config(ROOT / "configs" / "train" / "mixnet_s.yaml", {"epoch_size": 12, "warmup_epochs": 2,
                                                                      "decay_epochs": 8})
    theirs = factory.create_scheduler(7, scheduler=cfg.scheduler, lr=cfg.lr, min_lr=cfg.min_lr,
                                      warmup_epochs=cfg.warmup_epochs, warmup_factor=cfg.warmup_factor,
                                      decay_epochs=cfg.decay_epochs, num_epochs=cfg.epoch_size)
    assert lr_schedule(cfg, 7) == pytest.approx(theirs, rel=1e-12)
