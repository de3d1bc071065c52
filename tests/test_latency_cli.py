"""``search.py profile`` and ``search.py mindir``: JSON output, one-line errors, the offline round trip."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, assert_user_error, run_cli
from search.latency import LatencyCache, LatencyTarget, measure_latency
from search.latency.offline import export_batch, import_results, measure_manifest
from space import parse_genome

TINY = ("stem8_head64_w1_d0.2_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3_a1_p1_s2_e3_i8_o16_re,"
        "r1_k3_a1_p1_s2_e3_i16_o24_se0.5_sw_sesw")


def test_profile_json_and_cache(tmp_path: Path) -> None:
    cache = str(tmp_path / "c.sqlite")
    args = ("profile", TINY, "--backend", "onnxruntime", "--device", "cpu", "--batch", "2", "--resolution", "64",
            "--warmup", "3", "--repeats", "12", "--min-span", "0", "--cache", cache, "--json")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    out = json.loads(first.stdout)
    assert out["backend"] == "onnxruntime" and out["device"] == "CPU" and out["repeats"] == 12
    assert 0 < out["median_ms"] <= out["p90_ms"] and out["cv"] >= 0 and out["cached"] is False
    assert out["env"]["batch"] == 2 and out["env"]["threads"] == 1 and out["env"]["mixconv_impl"] == "split"
    second = json.loads(run_cli(*args).stdout)
    assert second["cached"] is True and second["median_ms"] == out["median_ms"]
    text = run_cli(*args[:-1])
    assert "median" in text.stdout and "(cache)" in text.stdout and "mixconv_impl split" in text.stdout


def test_profile_errors_are_one_line() -> None:
    assert_user_error(run_cli("profile", TINY, "--backend", "tvm"), "unknown backend 'tvm'",
                      "mindspore, onnxruntime, mindir")
    assert_user_error(run_cli("profile", TINY, "--device", "NPU"), "unknown device 'NPU'", "CPU, GPU, Ascend")
    assert_user_error(run_cli("profile", TINY, "--backend", "mindspore", "--device", "Ascend", "--no-cache"),
                      "device 'Ascend' is not present", "available: CPU")
    assert_user_error(run_cli("profile", TINY, "--repeats", "1", "--no-cache"), "repeats 1")
    assert_user_error(run_cli("profile", TINY, "--min-span", "-1", "--no-cache"), "min_span_s -1.0", "from 0 to 30")


def test_profile_without_onnxruntime_is_a_usage_error() -> None:
    code = ("import sys; sys.modules['onnxruntime'] = None; from search.cli import main; "
            f"sys.exit(main(['profile', '{TINY}', '--no-cache']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT)), timeout=300)
    assert_user_error(proc, "needs the onnxruntime package", "pip install onnxruntime")


def test_mindir_export_measure_import_round_trip(tmp_path: Path) -> None:
    genomes = [parse_genome(TINY), parse_genome(TINY).with_changes(num_classes=20)]
    manifest = export_batch(genomes, batch=1, resolution=64, out_dir=tmp_path / "models", progress=False)
    doc = json.loads(manifest.read_text())
    assert [m["key"] for m in doc["models"]] == [g.key() for g in genomes]
    assert all((tmp_path / "models" / m["file"]).is_file() for m in doc["models"])
    results = tmp_path / "results.csv"
    rows = measure_manifest(manifest, "CPU", results, warmup=2, repeats=10, min_span_s=0.5, progress=False)
    assert len(rows) == 2 and results.is_file()
    with results.open() as handle:
        stored = list(csv.DictReader(handle))
    assert [r["genome_key"] for r in stored] == [g.key() for g in genomes]
    assert all(float(r["median_ms"]) > 0 and r["backend"] == "mindir" for r in stored)
    again = measure_manifest(manifest, "CPU", results, warmup=2, repeats=10, min_span_s=0.5, progress=False)
    assert again == rows  # nothing left to measure: resumed from the CSV
    cache = LatencyCache(tmp_path / "cache.sqlite")
    assert import_results(results, cache, warmup=2, repeats=10) == 2
    hit = measure_latency(genomes[1], LatencyTarget(backend="mindir", device="CPU", resolution=64),
                          warmup=2, repeats=10, cache=cache)
    assert hit.cached and hit.median_ms == float(stored[1]["median_ms"])


def test_mindir_commands(tmp_path: Path) -> None:
    proc = run_cli("mindir", "export", TINY, "--resolution", "64", "--out", str(tmp_path / "m"), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "m" / "manifest.json").is_file() and "wrote 1 MindIR" in proc.stdout
    assert_user_error(run_cli("mindir", "measure", str(tmp_path / "m"), "--out", str(tmp_path / "r.csv")),
                      "device 'Ascend' is not present")
    measured = run_cli("mindir", "measure", str(tmp_path / "m"), "--device", "CPU", "--warmup", "1", "--repeats",
                       "10", "--min-span", "0", "--out", str(tmp_path / "r.csv"), "--no-progress")
    assert measured.returncode == 0 and "wrote 1 results" in measured.stdout, measured.stderr[-2000:]
    assert_user_error(run_cli("mindir", "measure", str(tmp_path / "m"), "--device", "CPU", "--min-span", "31",
                              "--out", str(tmp_path / "r2.csv")), "min_span_s 31.0", "from 0 to 30")
    assert not (tmp_path / "r2.csv").exists()
    assert_user_error(run_cli("mindir", "import", str(tmp_path / "missing.csv"), "--cache",
                              str(tmp_path / "c.sqlite")), "results file", "not found")
    assert_user_error(run_cli("mindir", "export", "--out", str(tmp_path / "n")), "no genomes to export")
