"""Latency measurement: protocol statistics, cache, backends ordering, repeatability, target checks."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path

import pytest

from search.latency import LatencyCache, LatencyResult, LatencyTarget, check_target, measure_latency
from search.latency import measure as measure_module
from search.latency.environment import env_key
from search.latency.protocol import MIN_SPAN_S
from space import parse_genome
from space.basics.errors import UsageError

TINY = parse_genome("stem8_head64_w1_d0.2_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,"
                    "r1_k3_a1_p1_s2_e3_i8_o16_re,r1_k3_a1_p1_s2_e3_i16_o24_se0.5_sw_sesw")
TINY_TARGET = LatencyTarget(backend="onnxruntime", device="CPU", resolution=64)


def uniform_genome(kernels: str, expand: int):
    """A six-block MixNet (10 classes) whose every block has the same kernel groups and expansion."""
    blocks = [f"r1_{kernels}_a1_p1_s1_e{expand}_i16_o16_re", f"r1_{kernels}_a1_p1_s2_e{expand}_i16_o24_re",
              f"r1_{kernels}_a1_p1_s1_e{expand}_i24_o24_re",
              f"r1_{kernels}_a1_p1_s2_e{expand}_i24_o40_se0.5_sw_sesw",
              f"r2_{kernels}_a1_p1_s1_e{expand}_i40_o40_se0.5_sw_sesw"]
    return parse_genome(",".join(["stem16_head256_w1_d0.2_nc10"] + blocks))


def test_profile_of_a_tiny_genome_has_sane_statistics() -> None:
    result = measure_latency(TINY, TINY_TARGET, warmup=5, repeats=30)
    assert not result.cached and result.repeats >= 30 and result.env["rounds"] >= 3
    assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert result.min_ms <= result.mean_ms
    assert 0 <= result.cv < 5
    # every timed run (in ms) fits in the seconds the rounds spanned: the units agree
    assert result.min_ms * result.repeats <= result.env["span_s"] * 1e3 + 1.0
    env = result.env
    assert env["backend"] == "onnxruntime" and env["device"] == "CPU" and env["threads"] == 1
    assert env["mixconv_impl"] == "split"  # what the ONNX export was built with
    assert env["mindspore"] and env["onnxruntime"] and env["warmup"] == 5
    assert env["genome_key"] == TINY.key() and env["resolution"] == 64
    d = result.to_dict()
    assert {"median_ms", "p90_ms", "min_ms", "mean_ms", "cv", "repeats", "env", "cached"} <= set(d)


def test_the_mindspore_runner_runs_the_compiled_graph_on_new_inputs() -> None:
    """After its first call the runner calls the compiled graph directly, not through ``Cell.__call__``:
    on new inputs it returns what the cell itself returns."""
    import mindspore as ms
    import numpy as np

    from mixnet import create_model
    from search.latency.measure import prepare_cell
    target = LatencyTarget(backend="mindspore", device="CPU", resolution=32)
    runner = prepare_cell(create_model(TINY, mixconv_impl="split"), target.input_shape, target)
    runner.run()
    runner.inputs = ms.Tensor(np.random.default_rng(1).standard_normal(target.input_shape, dtype=np.float32))
    runner.run()
    runner.synchronize()
    want = runner.cell(runner.inputs).asnumpy()
    assert runner.call is not runner.cell and np.array_equal(runner.output.asnumpy(), want)


def test_the_cache_returns_the_stored_result_without_measuring(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = []
    real_prepare = measure_module.prepare_runner

    def counting_prepare(*args, **kwargs):
        """The real runner preparation (export + session), counted."""
        prepared.append(args[2])
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(measure_module, "prepare_runner", counting_prepare)
    cache = LatencyCache(tmp_path / "lat.sqlite")
    first = measure_latency(TINY, TINY_TARGET, warmup=2, repeats=10, cache=cache, min_span_s=0.0)
    assert not first.cached and len(cache) == 1 and first.repeats == 10 and prepared == [TINY_TARGET]
    second = measure_latency(TINY, TINY_TARGET, warmup=2, repeats=10, cache=cache)
    assert second.cached and prepared == [TINY_TARGET]  # nothing built, exported or timed
    assert (second.median_ms, second.p90_ms, second.cv) == (first.median_ms, first.p90_ms, first.cv)
    assert second.env == first.env  # the stored rounds, span and pooled median, not a new timing's
    # the same genome on another target, or with more timed runs than stored, is not a hit
    assert cache.get(TINY, LatencyTarget(resolution=96), env_key(first.env)) is None
    assert cache.get(TINY, TINY_TARGET, env_key(first.env), min_repeats=50) is None
    assert cache.get(TINY, TINY_TARGET, env_key(dict(first.env, onnxruntime="0.0"))) is None
    # another process sees the same file
    assert len(LatencyCache(tmp_path / "lat.sqlite")) == 1
    # more timed runs than stored is a miss, and the counter sees the new measurement
    third = measure_latency(TINY, TINY_TARGET, warmup=2, repeats=20, cache=cache, min_span_s=0.0)
    assert not third.cached and third.repeats >= 20 and len(prepared) == 2


def test_results_are_kept_apart_by_the_mixconv_impl_that_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the mindspore backend a genome runs what ``auto`` chose on the device: timed under two choices,
    it is two cache entries, each naming the implementation that ran, and each is found again under its own."""
    from mixnet import impl_select
    from mixnet.kernels.build import library_path
    library_path()  # the kernels are available (built where they are kept) before the choices go elsewhere
    monkeypatch.setenv("MIXNAS_CACHE_DIR", str(tmp_path))
    target = LatencyTarget(backend="mindspore", device="CPU", resolution=64)

    def measured_with(impl: str) -> LatencyResult:
        """The genome timed (or found in the cache) after ``auto`` chose ``impl`` on this device."""
        key = impl_select.choice_key(impl_select.candidates())
        impl_select.cache_file().write_text(json.dumps({key: {"impl": impl, "seconds": {}}}))
        return measure_latency(TINY, target, warmup=2, repeats=10, cache=cache, min_span_s=0.0)

    cache = LatencyCache(tmp_path / "lat.sqlite")
    split, kernels = measured_with("split"), measured_with("kernels")
    assert (split.env["mixconv_impl"], kernels.env["mixconv_impl"]) == ("split", "kernels")
    assert not split.cached and not kernels.cached and len(cache) == 2
    assert len({row["env_key"] for row in cache}) == 2
    again = measured_with("split")
    assert again.cached and again.env == split.env


def _write_results(path: str, worker: int) -> None:
    """Store 20 results for distinct genomes from one process."""
    cache = LatencyCache(path)
    for i in range(20):
        genome = TINY.with_changes(num_classes=1000 + worker * 100 + i)
        env = {"backend": "onnxruntime", "device": "CPU", "batch": 1, "resolution": 64, "threads": 1}
        cache.put(genome, LatencyResult(1.0 + i, 1.1 + i, 0.9 + i, 1.0 + i, 0.01, 10, env))


def test_the_cache_takes_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    LatencyCache(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_results, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(LatencyCache(path)) == 80


@pytest.mark.timing
@pytest.mark.parametrize("backend", ["onnxruntime", "mindspore"])
def test_a_heavier_genome_measures_slower(backend: str) -> None:
    target = LatencyTarget(backend=backend, device="CPU", resolution=128)
    # rounds over 1 s rather than the default 5: the two genomes differ several times over
    heavy = measure_latency(uniform_genome("k3.5.7.9.11", 6), target, warmup=3, repeats=15, min_span_s=1.0)
    light = measure_latency(uniform_genome("k3", 3), target, warmup=3, repeats=15, min_span_s=1.0)
    # the fastest runs are the least disturbed by other load on the machine
    assert heavy.min_ms > 1.1 * light.min_ms, (heavy.min_ms, light.min_ms)
    assert heavy.median_ms > light.median_ms, (heavy.median_ms, light.median_ms)


@pytest.mark.timing
def test_two_profiles_of_one_genome_agree_within_5_percent() -> None:
    """Back-to-back profiles agree within 5% on the median, in one of up to four tries.

    Each profile exports and loads its own session. A shared host's best speed moves by several
    percent from one stretch of seconds to the next (see the README's latency section), so one
    pair in five or six can straddle such a move; four pairs in a row do so rarely, while a
    protocol whose median carries its own noise of 5% or more fails most pairs.
    """
    genome, target = uniform_genome("k3", 3), LatencyTarget(resolution=224)
    pairs: list[tuple[float, float]] = []
    loads: list[float] = []
    for _ in range(4):
        a = measure_latency(genome, target, warmup=20, repeats=100)
        b = measure_latency(genome, target, warmup=20, repeats=100)
        assert a.env["span_s"] >= MIN_SPAN_S and b.env["span_s"] >= MIN_SPAN_S
        pairs.append((a.median_ms, b.median_ms))
        loads.append(round(os.getloadavg()[0], 1))
        if abs(a.median_ms - b.median_ms) <= 0.05 * min(a.median_ms, b.median_ms):
            return
    pytest.fail(f"no pair of profiles agreed within 5% on the median (ms): {pairs}; load averages {loads} "
                f"on {os.cpu_count()} CPUs")


@pytest.mark.parametrize("fields, fragments", [
    ({"backend": "tensorrt"}, ("unknown backend 'tensorrt'", "mindspore, onnxruntime, mindir")),
    ({"device": "TPU"}, ("unknown device 'TPU'", "CPU, GPU, Ascend")),
    ({"backend": "mindspore", "device": "Ascend"}, ("device 'Ascend' is not present", "available: CPU")),
    ({"batch": 0}, ("batch 0",)),
    ({"threads": 0}, ("threads 0",)),
])
def test_a_target_that_cannot_run_here_is_refused(fields: dict, fragments: tuple[str, ...]) -> None:
    with pytest.raises(UsageError) as info:
        check_target(LatencyTarget(**fields))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_missing_onnxruntime_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UsageError, match="needs the onnxruntime package"):
        check_target(LatencyTarget())


def test_mindir_on_an_absent_device_explains_the_offline_route(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="mindir export"):
        measure_latency(TINY, LatencyTarget(backend="mindir", device="Ascend"),
                        cache=LatencyCache(tmp_path / "c.sqlite"))
