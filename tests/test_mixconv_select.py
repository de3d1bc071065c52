"""Choosing a MixConv implementation (``auto`` and its cache) and building the C++ kernels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixnet import create_model, impl_select
from mixnet.kernels import build
from space.errors import UsageError


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
    assert chosen in ("split", "fused", "custom")
    data = json.loads(impl_select.cache_file().read_text())
    entry = data[impl_select.device_key()]
    assert entry["impl"] == chosen and set(entry["seconds"]) == {"split", "fused", "custom"}
    assert chosen == min(entry["seconds"], key=entry["seconds"].get)
    assert not list(cache.glob("*.tmp*")) and not list(cache.glob("mixconv_impl.json.*"))

    def no_measuring(*_args, **_kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(impl_select, "measure", no_measuring)
    assert impl_select.resolve_impl("auto") == chosen
    monkeypatch.setattr(impl_select, "PROBES", ((8, 8, 2, (3,), 1, 1, 8, 0),))  # other probes: another key
    with pytest.raises(AssertionError, match="measured again"):
        impl_select.resolve_impl("auto")


def test_unknown_impl_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="mixconv_impl 'fast' - allowed: auto, split, fused, custom"):
        create_model("mixnet_s", mixconv_impl="fast")


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


def test_missing_compiler_is_a_clear_error_and_auto_falls_back(cache: Path, small_probes: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    build.library_path.cache_clear()
    try:
        with pytest.raises(build.KernelUnavailable, match="no C\\+\\+ compiler: 'no-such-compiler-here'"):
            impl_select.resolve_impl("custom")
        with pytest.warns(UserWarning, match="'custom' unavailable"):
            assert impl_select.resolve_impl("auto") in ("split", "fused")
    finally:
        build.library_path.cache_clear()


def test_failed_compile_leaves_no_partial_library(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "FLAGS", build.FLAGS + ("-no-such-flag",))
    build.library_path.cache_clear()
    try:
        with pytest.raises(build.KernelUnavailable, match="compiling the kernels"):
            build.library_path()
        assert not list((cache / "kernels").iterdir())
    finally:
        build.library_path.cache_clear()
