"""End to end: a MixNet genome trained on CPU on the digits at 32 px reaches >= 95% val top-1.

Measured on 2 shared cores: 4 epochs in 40-80 s (6-8 s of graph compilation, 96.9% top-1),
plus about 10 s for the validate command; 70-100 s for the whole test.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, run_cli
from trainer import load_config, train, write_digits

# A small MixNet: MixConv (3x3 + 5x5 groups), SE with swish, ReLU/swish blocks, 4 blocks, head 128.
GENOME = ("stem16_head128_w1_d0.1_nc10,r1_k3_a1_p1_s2_e1_i16_o16_re,"
          "r1_k3.5_a1_p1_s1_e3_i16_o24_se0.25_sw_sesw,r1_k3.5_a1_p1_s2_e3_i24_o40_se0.25_sw_sesw,"
          "r1_k3.5_a1_p1_s2_e3_i40_o64_re")


@pytest.mark.slow
def test_small_mixnet_reaches_95_percent_on_digits(tmp_path) -> None:
    digits = write_digits(tmp_path / "digits", size=32)
    cfg = load_config(ROOT / "configs" / "train" / "digits.yaml",
                      {"data_dir": str(digits), "ckpt_save_dir": str(tmp_path / "run"), "genome": GENOME,
                       "width": None, "epoch_size": 4})
    result = train(cfg, progress=False)
    assert result.final_top1 >= 95.0, result
    proc = run_cli("validate", "--config", str(ROOT / "configs" / "train" / "digits.yaml"), "--data_dir",
                   str(digits), "--ckpt_path", str(result.best_ckpt), "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"n": 360' in proc.stdout
