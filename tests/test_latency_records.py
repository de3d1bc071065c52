"""What a latency result records about where it ran is true, or the measurement is an error."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest

from conftest import assert_user_error, run_cli
from search.latency import LatencyCache, LatencyTarget
from search.latency.backends.onnx_runtime import OrtRunner, export_onnx
from search.latency.environment import env_key, environment
from search.latency.host_cpus import set_affinity
from search.latency.measure import measure_cells
from search.latency.offline import export_batch, import_results, measure_manifest
from search.latency.protocol import time_runs
from space import parse_genome
from space.basics.errors import UsageError

TINY = ("stem8_head64_w1_d0.2_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3_a1_p1_s2_e3_i8_o16_re,"
        "r1_k3_a1_p1_s2_e3_i16_o24_se0.5_sw_sesw")
ALLOWED = frozenset(os.sched_getaffinity(0))


class SpinRunner:
    """Keeps one CPU busy for 0.2 ms per run and notes the CPU sets it was allowed."""

    host_threads = 1

    def __init__(self) -> None:
        self.cpu_sets: set[frozenset[int]] = set()

    def run(self) -> None:
        """Spin."""
        self.cpu_sets.add(frozenset(os.sched_getaffinity(0)))
        end = time.perf_counter() + 2e-4
        while time.perf_counter() < end:
            pass

    def synchronize(self) -> None:
        """Nothing to wait for."""


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs to rotate over")
def test_rounds_that_may_not_pin_do_not_claim_to_rotate(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(tid: int, cpus) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    runner = SpinRunner()
    result = time_runs(runner, warmup=2, repeats=20, min_span_s=0.0)
    assert result.env["cpu_groups"] == 1 and runner.cpu_sets == {ALLOWED}
    assert result.env["cpu_pinning"] == "not permitted (Operation not permitted)"

    def exited(tid: int, cpus) -> None:
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "sched_setaffinity", exited)
    set_affinity(123456, ALLOWED)  # a thread that has exited is skipped
    monkeypatch.undo()
    assert "cpu_pinning" not in time_runs(SpinRunner(), warmup=1, repeats=20, min_span_s=0.0).env


def test_cpp_kernels_run_on_the_targets_thread_count() -> None:
    from mixnet import create_model
    from mixnet.kernels.threads import kernel_threads, set_kernel_threads

    target = LatencyTarget(backend="mindspore", device="CPU", resolution=64)
    set_kernel_threads(2)  # what the kernels use by default on a 2-CPU host
    [result] = measure_cells([lambda: create_model(parse_genome(TINY), mixconv_impl="kernels")],
                             [target.input_shape], [environment(target, "kernels")], target, warmup=2, repeats=10,
                             min_span_s=0.0)
    assert result.env["threads"] == 1
    assert kernel_threads() == result.env["kernel_threads"] == result.env["threads"]


def test_gpu_models_are_recorded_and_unknown_ones_do_not_share_a_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    smi = tools / "nvidia-smi"
    smi.write_text('#!/bin/sh\nfor a; do id="$a"; done\n'
                   'case "$id" in 0) echo "Tesla T4";; 1) echo "NVIDIA A100-SXM4-40GB";; '
                   '*) echo "No devices were found"; exit 6;; esac\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu = LatencyTarget(backend="mindspore", device="GPU")
    t4 = environment(gpu, "split")
    a100 = environment(LatencyTarget(backend="mindspore", device="GPU", device_id=1), "split")
    assert t4["device_name"] == "Tesla T4" and a100["device_name"] == "NVIDIA A100-SXM4-40GB"
    assert env_key(t4) != env_key(a100) and "device_name_unknown" not in t4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert environment(gpu, "split")["device_name"] == "NVIDIA A100-SXM4-40GB"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    failed = environment(gpu, "split")
    assert failed["device_name"] == "unknown GPU" and "No devices were found" in failed["device_name_unknown"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    absent = environment(gpu, "split")
    assert absent["device_name"] == "unknown GPU" and "nvidia-smi" in absent["device_name_unknown"]
    assert env_key(absent) not in (env_key(t4), env_key(a100))


def test_an_onnx_session_that_fell_back_to_the_cpu_is_an_error(tmp_path: Path) -> None:
    from mindspore import nn
    path = export_onnx(nn.Conv2d(3, 4, 3), (1, 3, 16, 16), tmp_path / "conv")
    # ONNX Runtime without the CUDA provider warns and runs the session on the CPU
    with pytest.raises(UsageError, match="provider CUDAExecutionProvider .* active: CPUExecutionProvider$"):
        OrtRunner(path, (1, 3, 16, 16), LatencyTarget(device="GPU"))
    runner = OrtRunner(path, (1, 3, 16, 16), LatencyTarget(device="CPU"))
    result = time_runs(runner, warmup=1, repeats=10, min_span_s=0.0)
    assert result.env["ort_providers"] == ["CPUExecutionProvider"]


def rewrite_env(source: Path, out: Path, **changes) -> Path:
    """A copy of a results CSV with ``changes`` made to every row's environment."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        row["env"] = json.dumps(dict(json.loads(row["env"]), **changes))
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_imported_results_must_match_their_target_and_the_protocol(tmp_path: Path) -> None:
    genome = parse_genome(TINY)
    manifest = export_batch([genome], batch=1, resolution=64, out_dir=tmp_path / "models", progress=False)
    results = tmp_path / "results.csv"
    measure_manifest(manifest, "CPU", results, warmup=2, repeats=10, min_span_s=0.0, progress=False)
    cache = LatencyCache(tmp_path / "cache.sqlite")
    key = genome.key()
    with pytest.raises(UsageError, match=f"line 2: genome {key}: repeats 10 - the protocol asks for at least 50"):
        import_results(results, cache)
    with pytest.raises(UsageError, match=f"genome {key}: warmup 2 - the protocol asks for at least 5"):
        import_results(results, cache, warmup=5, repeats=10)
    moved = rewrite_env(results, tmp_path / "moved.csv", resolution=96)
    with pytest.raises(UsageError, match=f"genome {key}: resolution '64' but its env says 96"):
        import_results(moved, cache, warmup=2, repeats=10)
    other = rewrite_env(results, tmp_path / "other.csv", backend="onnxruntime")
    with pytest.raises(UsageError, match=f"genome {key}: backend 'mindir' but its env says 'onnxruntime'"):
        import_results(other, cache, warmup=2, repeats=10)
    assert len(cache) == 0
    assert import_results(results, cache, warmup=2, repeats=10) == 1 and len(cache) == 1
    assert_user_error(run_cli("mindir", "import", str(moved), "--cache", str(tmp_path / "cli.sqlite")),
                      f"genome {key}: resolution", "96")
