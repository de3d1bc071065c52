"""Choosing a MixConv implementation (``auto`` and its cache) and building the C++ kernels."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest

from mixnet import create_model, impl_select
from mixnet.kernels import build
from space.basics.errors import UsageError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache directory for this test."""
    monkeypatch.setenv("MIXNAS_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def small_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny probe layers, so that measuring takes seconds."""
    monkeypatch.setattr(impl_select, "PROBES", ((8, 12, 3, (3, 5), 1, 2, 12, 4), (8, 8, 2, (3,), 2, 1, 8, 0)))
    monkeypatch.setattr(impl_select, "REPEATS", 2)


def test_auto_measures_once_and_remembers(cache: Path, small_probes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = impl_select.resolve_impl("auto")
    assert chosen in ("split", "padded", "kernels")
    data = json.loads(impl_select.cache_file().read_text())
    entry = data[impl_select.choice_key(("split", "padded", "kernels"))]
    assert entry["impl"] == chosen and set(entry["seconds"]) == {"split", "padded", "kernels"}
    assert chosen == min(entry["seconds"], key=entry["seconds"].get)
    assert not list(cache.glob("*.tmp*")) and not list(cache.glob("mixconv_impl.json.*"))

    def no_measuring(*_args, **_kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(impl_select, "measure", no_measuring)
    assert impl_select.resolve_impl("auto") == chosen
    monkeypatch.setattr(impl_select, "PROBES", ((8, 8, 2, (3,), 1, 1, 8, 0),))  # other probes: another key
    with pytest.raises(AssertionError, match="measured again"):
        impl_select.resolve_impl("auto")


def test_a_choice_stored_under_an_old_name_is_its_implementation(cache: Path, small_probes: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key = impl_select.choice_key(impl_select.candidates())
    impl_select.cache_file().write_text(json.dumps({key: {"impl": "custom", "seconds": {}}}))
    monkeypatch.setattr(impl_select, "measure", lambda *_a, **_k: pytest.fail("measured again"))
    assert impl_select.resolve_impl("auto") == "kernels"
    assert create_model("mixnet_s").mixconv_impl == "kernels"
    assert [impl_select.resolve_impl(name) for name in ("fused", "custom")] == ["padded", "kernels"]


def test_measuring_leaves_the_initial_weights_alone(cache: Path, small_probes: None) -> None:
    """A seeded network gets the same weights whether or not its build measured ``auto`` first."""
    import mindspore as ms
    import numpy as np

    def seeded_weights(measure_first: bool) -> dict:
        ms.set_seed(11)
        if measure_first:
            impl_select.measure(("split",), repeats=1)
        net = create_model("mixnet_s", num_classes=10, mixconv_impl="split")
        return {n: p.asnumpy() for n, p in net.parameters_and_names()}

    plain, measured = seeded_weights(False), seeded_weights(True)
    assert all(np.array_equal(plain[n], measured[n]) for n in plain)


def test_unknown_impl_is_a_usage_error() -> None:
    message = "mixconv_impl 'fast' - allowed: auto, split, padded, kernels (also fused for padded, custom for kernels)"
    with pytest.raises(UsageError) as err:
        create_model("mixnet_s", mixconv_impl="fast")
    assert str(err.value) == message


def test_library_is_built_once_per_source(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build.library_path.cache_clear()
    try:
        first = build.library_path()
        assert first.parent == cache / "kernels" and first.is_file()
        stamp = first.stat().st_mtime_ns
        build.library_path.cache_clear()
        commands = []
        run = build.subprocess.run
        monkeypatch.setattr(build.subprocess, "run", lambda cmd, *a, **k: commands.append(cmd) or run(cmd, *a, **k))
        assert build.library_path() == first and first.stat().st_mtime_ns == stamp
        assert commands and all("-o" not in cmd for cmd in commands)  # no compile, only the version asked
    finally:
        build.library_path.cache_clear()


def test_missing_compiler_is_a_clear_error_and_auto_measures_again_once_installed(
        tmp_path: Path, small_probes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a C++ compiler ``kernels`` is a clear error and ``auto`` chooses between ``split`` and
    ``padded``; that choice is not kept once ``$CXX`` is there: ``auto`` measures again with ``kernels``
    among the candidates, and keeps both choices."""
    build.library_path.cache_clear()
    library = build.library_path()  # where the kernels are kept for this user, built if they are not yet
    monkeypatch.setenv("MIXNAS_CACHE_DIR", str(tmp_path))
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / library.name).symlink_to(library)  # the same build: found, not compiled again
    monkeypatch.setattr(impl_select, "PROBES", ((8, 8, 2, (3,), 1, 1, 8, 0),))  # one probe: fewer compiles
    try:
        with monkeypatch.context() as no_compiler:
            no_compiler.setenv("CXX", "no-such-compiler-here")
            build.library_path.cache_clear()
            with pytest.raises(build.KernelUnavailable, match="no C\\+\\+ compiler: 'no-such-compiler-here'"):
                impl_select.resolve_impl("kernels")
            with pytest.raises(build.KernelUnavailable):
                impl_select.resolve_impl("custom")
            with pytest.warns(UserWarning, match="'kernels' unavailable"):
                without = impl_select.resolve_impl("auto")
        build.library_path.cache_clear()
        with_compiler = impl_select.resolve_impl("auto")
    finally:
        build.library_path.cache_clear()
    entries = json.loads(impl_select.cache_file().read_text()).values()
    measured = {frozenset(e["seconds"]): e for e in entries}
    assert set(measured) == {frozenset({"split", "padded"}), frozenset({"split", "padded", "kernels"})}
    for impl, candidates in ((without, {"split", "padded"}), (with_compiler, {"split", "padded", "kernels"})):
        seconds = measured[frozenset(candidates)]["seconds"]
        assert impl == measured[frozenset(candidates)]["impl"] == min(seconds, key=seconds.get)


def test_failed_compile_leaves_no_partial_library(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "FLAGS", build.FLAGS + ("-no-such-flag",))
    build.library_path.cache_clear()
    try:
        with pytest.raises(build.KernelUnavailable, match="compiling the kernels"):
            build.library_path()
        assert not list((cache / "kernels").iterdir())
    finally:
        build.library_path.cache_clear()


def test_default_is_the_measured_fastest(cache: Path, small_probes: None) -> None:
    from trainer.config import load_config
    chosen = impl_select.resolve_impl("auto")
    assert create_model("mixnet_s").mixconv_impl == chosen
    assert create_model("mixnet_s", mixconv_impl="split").mixconv_impl == "split"
    assert load_config("configs/train/digits.yaml").mixconv_impl == "auto"


PYNATIVE_SCRIPT = """
import json, sys
import mindspore as ms, numpy as np
from mixnet.quiet import quiet_mindspore
quiet_mindspore()
ms.set_context(mode=ms.PYNATIVE_MODE)
from mixnet import create_model
x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32))
out = {}
for impl in ("split", "padded", "kernels"):
    ms.set_seed(0)
    net = create_model(sys.argv[1], mixconv_impl=impl)
    net.set_train(True)
    grads = ms.grad(net, grad_position=None, weights=net.trainable_params())(x)
    net.set_train(False)
    out[impl] = {"logits": net(x).asnumpy().tolist(), "grad": float(sum(np.abs(g.asnumpy()).sum() for g in grads))}
print(json.dumps(out))
"""


def test_pynative_forward_and_gradients_run_under_numpy_2(tmp_path: Path) -> None:
    """PyNative mode (MindSpore's default) runs every implementation, gradients included."""
    import subprocess
    import sys

    import numpy as np

    from conftest import ROOT
    from test_speed import SMALL
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT), MIXNAS_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", PYNATIVE_SCRIPT, SMALL], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = np.array(out["split"]["logits"])
    for impl in ("padded", "kernels"):
        assert np.allclose(out[impl]["logits"], ref, rtol=1e-4, atol=1e-5), impl
        assert abs(out[impl]["grad"] - out["split"]["grad"]) <= 1e-3 * out["split"]["grad"], impl


@pytest.fixture
def built_kernels_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A new cache folder holding nothing but the built kernel library (built here, in the test's setup, so
    that the timing test below holds the machine alone only while it measures)."""
    env = {"MIXNAS_CACHE_DIR": str(tmp_path / "mixnas"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    build.library_path.cache_clear()
    build.library_path()
    assert not (tmp_path / "mixnas" / "mixconv_impl.json").exists()
    yield env
    build.library_path.cache_clear()


@pytest.mark.timing
def test_first_profile_with_nothing_measured_yet(tmp_path: Path, built_kernels_only: dict[str, str]) -> None:
    """A new user's first ``profile`` on the mindspore backend (kernels built, nothing measured yet) measures
    ``auto`` and then the network."""
    from conftest import run_cli
    env = built_kernels_only
    proc = run_cli("profile", "mixnet_s", "--backend", "mindspore", "--device", "CPU", "--json",
                   "--warmup", "2", "--repeats", "10", "--min-span", "0", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["median_ms"] > 0 and result["env"]["backend"] == "mindspore"
    choice = json.loads((tmp_path / "mixnas" / "mixconv_impl.json").read_text())
    assert len(choice) == 1 and [e["impl"] for e in choice.values()] == ["kernels"]  # g++ is here
