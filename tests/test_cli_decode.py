"""``search.py decode``: the numbers users check, and every bad-input message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import assert_user_error, run_cli


@pytest.mark.parametrize("name,params", [("mixnet_s", 4_134_606), ("mixnet_m", 5_014_382),
                                         ("mixnet_l", 7_329_252)])
def test_decode_json_reports_params(name: str, params: int) -> None:
    proc = run_cli("decode", name, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["params"] == params and out["genome"].startswith("stem")
    assert {"genome", "params", "madds", "blocks"} <= set(out)
    if name == "mixnet_s":
        assert 230e6 <= out["madds"] <= 265e6
        assert len([b for b in out["blocks"] if b["name"].startswith("block")]) == 16


def test_decode_table_and_formats() -> None:
    proc = run_cli("decode", "mixnet_s", "--to", "tf")
    assert proc.returncode == 0 and "r1_k3.5.7.9.11_a1_p1_s22_e6_i120_o200_se0.5_sw" in proc.stdout
    assert "params 4,134,606" in proc.stdout and "block 15" in proc.stdout
    assert proc.stderr == ""


def test_decode_checks_space_membership() -> None:
    ok = run_cli("decode", "mixnet_s", "--space", "configs/space/mixnet_s.yaml")
    assert ok.returncode == 0 and "in space mixnet_s" in ok.stdout
    bad = run_cli("decode", "mixnet_m", "--space", "configs/space/mixnet_s.yaml")
    assert_user_error(bad, "not in space 'mixnet_s'", "19 layers")
    genome = json.loads(run_cli("decode", "mixnet_s", "--json").stdout)["genome"]
    outside = genome.replace("r1_k3.5.7_a1_p1_s2_e6_i24_o40", "r1_k3.5.7.9.11.13_a1_p1_s2_e6_i24_o40")
    assert_user_error(run_cli("decode", outside, "--space", "configs/space/mixnet_s.yaml"),
                      "layer 3: kernel_sizes 3.5.7.9.11.13 not in menu")


@pytest.mark.parametrize("args,fragments", [
    (["decode", "r1_k3.4_a1_p1_s11_e1_i16_o16"],
     ["block 1: token 'k3.4' - kernel sizes must be odd integers >= 3"]),
    (["decode", "stem16_head1536_w1_d0.2_nc1000,r1_k3_a1_p1_s1_e1_i16_o16_re,r1_k4_a1_p1_s2_e6_i16_o24_re"],
     ["block 2: token 'k4'"]),
    (["decode", "mixnet_xl"], ["unknown preset 'mixnet_xl'", "mixnet_s, mixnet_m, mixnet_l"]),
    (["decode", "missing.yaml"], ["genome file 'missing.yaml' not found"]),
    (["decode", "mixnet_s", "--resolution", "abc"], ["--resolution", "invalid int value: 'abc'"]),
    (["decode", "mixnet_s", "--space", "nope.yaml"], ["space file 'nope.yaml' not found"]),
])
def test_bad_input_is_one_line_exit_2(args: list[str], fragments: list[str]) -> None:
    assert_user_error(run_cli(*args), *fragments)


def test_bad_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("blocks: [r1_k3_a1_p1_s11_e1_i16_o16\n")
    assert_user_error(run_cli("decode", str(path)), "is not valid YAML/JSON")
