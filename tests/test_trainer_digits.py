"""End to end: the shipped digits recipe (MixNet-S at width 0.5, 32 px) reaches >= 95% val top-1.

Runs the two commands a user runs, ``train`` then ``validate``, on the bundled digits (about
2.5 minutes on 2 cores).
"""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from trainer import write_digits

RECIPE = "configs/train/digits.yaml"


@pytest.mark.slow
def test_digits_recipe_reaches_95_percent(tmp_path) -> None:
    digits = write_digits(tmp_path / "digits", size=32)
    run = tmp_path / "run"
    proc = run_cli("train", "--config", RECIPE, "--data_dir", str(digits), "--ckpt_save_dir", str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli("validate", "--config", RECIPE, "--data_dir", str(digits), "--ckpt_path", str(run / "best.ckpt"),
                   "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = json.loads(proc.stdout)
    assert scores["n"] == 360 and scores["top1"] >= 95.0, scores
