"""The speed benchmarks run end to end (tiny settings) and report what they promise."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from conftest import ROOT

SMALL = ("stem8_head32_w1_d0_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3.5.7_a1.1_p1.1_s2_e3_i8_o12_re,"
         "r2_k3.5.7.9_a1.1_p1.1_s1_e6_i12_o12_se0.5_sw_sere")


def run_bench(script: str, *args: str) -> dict:
    """Run ``bench/<script>`` with ``--json`` in a fresh process and parse its output."""
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_speed_benchmark_compares_ours_with_mindcv() -> None:
    from mixnet.impl_select import resolve_impl

    # inference only: compiling MindCV's training graph would double the test's time
    report = run_bench("mixnet_speed.py", "--impl", "custom", "--resolution", "32", "--batch", "2", "--repeats", "1",
                       "--train-steps", "1", "--no-batch-inference", "--no-train", "--no-extras")
    rows = {r["metric"]: r for r in report["rows"]}
    assert {m: r["unit"] for m, r in rows.items()} == {"inference batch 1": "ms", "first call batch 1 (compile)": "s"}
    for r in rows.values():
        assert all(math.isfinite(r[side]) and r[side] > 0 for side in ("ours", "mindcv")), r
    # a first call compiles the graph, so it takes longer than a call of the compiled network
    for side in ("ours", "mindcv"):
        assert rows["first call batch 1 (compile)"][side] * 1e3 > rows["inference batch 1"][side], rows
    # what was asked is what was measured
    assert (report["model"], report["resolution"], report["batch"], report["repeats"], report["train_steps"]) == \
        ("mixnet_s", 32, 2, 1, 1)
    assert report["impl"] == resolve_impl("custom") == "kernels"  # the old name, reported by the new
    # both networks carry the same weights and compute the same function: the logits are far from zero
    # and agree to float rounding (amplified by the random deep network, see the README's Speed section)
    assert report["logit_scale"] > 1e-2
    assert 0 <= report["max_logit_difference"] <= 1e-3 * report["logit_scale"], report


def test_layer_benchmark_times_every_variant() -> None:
    rows = run_bench("mixnet_layers.py", "--model", SMALL, "--resolution", "32", "--repeats", "1",
                     "--parts", "mixconv,se")
    assert [(r["block"], r["part"]) for r in rows] == [(0, "mixconv"), (1, "mixconv"), (2, "mixconv"), (2, "se"),
                                                        (3, "mixconv"), (3, "se")]
    assert all(set(r["ms"]) == {"split", "padded", "kernels"} for r in rows if r["part"] == "mixconv")
    assert all(set(r["ms"]) == {"split", "kernels"} and min(r["ms"].values()) > 0 for r in rows if r["part"] == "se")
