"""``search.py profile SPEC --blocks``: every part of the genome timed on onnxruntime and mindspore,
their sum set against the whole network of the same run, CSV and PNG written."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from conftest import assert_user_error, run_cli
from space import parse_genome
from space.cost import network_cost

# three blocks: one kernel size, a two-group MixConv with expansion 6, a three-group one with SE and swish
GENOME = ("stem32_head256_w1_d0.1_nc10,r1_k3_a1_p1_s1_e1_i32_o32_re,r1_k3.5_a1_p1_s2_e6_i32_o48_re,"
          "r1_k3.5.7_a1_p1_s2_e6_i48_o64_se0.25_sw_sesw")


@pytest.mark.parametrize("backend", ["onnxruntime", "mindspore"])
def test_profile_blocks_lists_every_part_and_accounts_for_the_whole(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "s.csv"
    proc = run_cli("profile", GENOME, "--blocks", "--backend", backend, "--resolution", "32",
                   "--warmup", "1", "--repeats", "3", "--min-span", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    genome = parse_genome(GENOME)
    names = [r["part"] for r in rows]
    assert names == ["stem"] + [f"block {i}" for i in range(1, 4)] + ["head", "classifier",
                                                                        "parts", "network", "overhead"]
    parts, by_name = rows[:-3], {r["part"]: r for r in rows[-3:]}
    costs = network_cost(genome, 32)
    assert [int(float(r["madds"])) for r in parts] == [row.madds for row in costs.rows]
    assert [r["in_shape"] for r in parts[:-1]] == ["x".join(map(str, row.in_shape)) for row in costs.rows[:-1]]
    total = sum(float(r["median_ms"]) for r in parts)
    assert float(by_name["parts"]["median_ms"]) == pytest.approx(total, rel=1e-5)
    whole, overhead = float(by_name["network"]["median_ms"]), float(by_name["overhead"]["median_ms"])
    assert overhead == pytest.approx(whole - total, rel=1e-4, abs=1e-6)
    assert sum(float(r["share"]) for r in parts) == pytest.approx(1.0, rel=1e-4)
    # the parts sum within 15% of the whole, or the gap is reported: it always is, as overhead
    printed = re.search(r"whole network ([0-9.]+) ms .* overhead \(network - parts\) ([-+0-9.]+) ms", proc.stdout)
    assert printed is not None, proc.stdout
    # the CSV keeps fewer digits than the printed line's source, so they agree to the printed rounding
    assert [float(v) for v in printed.groups()] == pytest.approx([whole, overhead], abs=1.5e-3), proc.stdout
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_blocks_bad_input() -> None:
    assert_user_error(run_cli("profile", "mixnet_s", "--blocks", "--out", "x.txt"), "--out x.txt", ".csv")
    assert_user_error(run_cli("profile", "mixnet_s", "--out", "x.csv"), "--out x.csv", "only with --blocks")
    assert_user_error(run_cli("profile", "mixnet_s", "--blocks", "--no-cache"), "never cached")
