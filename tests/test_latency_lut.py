"""The per-block LUT: CLI build, CSV round trip, prediction, compatibility checks, accuracy check."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import assert_user_error, run_cli
from search.latency import LatencyTable
from search.latency.accuracy import check_lut, kendall_tau, scores
from search.latency.lut import fit_correction
from search.latency.lut_build import calibration_genomes
from space.errors import UsageError
from space.search_space import SearchSpace

TINY_SPACE = """\
name: tiny
skeleton: "stem8_head64_w1_d0.2_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3_a1_p1_s2_e3_i8_o16_re,\\
r1_k3_a1_p1_s2_e3_i16_o24_se0.5_sw_sesw"
choices:
  kernel_sizes: ["3", "3.5.7"]
  expand_ratio: [3, 6]
layers:
  0: {expand_ratio: [1]}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny space's LUT built with the CLI at resolution 64 (3 calibration genomes)."""
    root = tmp_path_factory.mktemp("lut")
    space_file = root / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
    lut = root / "tiny_lut.csv"
    proc = run_cli("lut", "build", "--space", str(space_file), "--backend", "onnxruntime", "--device", "CPU",
                   "--resolution", "64", "--warmup", "3", "--repeats", "20", "--calibrate", "3",
                   "--cache", str(root / "cache.sqlite"), "--out", str(lut))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lut build" in proc.stderr and ("part/s" in proc.stderr or "s/part" in proc.stderr)
    return {"root": root, "space_file": space_file, "lut": lut, "stdout": proc.stdout,
            "space": SearchSpace.from_yaml(space_file)}


def test_the_lut_has_every_choice_of_every_layer_and_fixed_terms(built: dict) -> None:
    table = LatencyTable.load(built["lut"])
    parts = [(e.part, e.layer, e.option) for e in table.entries]
    assert parts[0] == ("stem", -1, "fixed")
    assert ("layer", 0, "k3_e1") in parts and ("layer", 0, "k3.5.7_e1") in parts
    assert {p[2] for p in parts if p[:2] == ("layer", 2)} == {"k3_e3", "k3_e6", "k3.5.7_e3", "k3.5.7_e6"}
    assert [p[0] for p in parts].count("network") == 3
    assert ("head", -1, "fixed") in parts and ("classifier", -1, "fixed") in parts
    assert all(e.median_ms > 0 and e.repeats >= 20 for e in table.entries)
    layer2 = {e.option: e for e in table.entries if e.layer == 2}
    assert layer2["k3_e3"].in_shape == "16x16x16"
    assert table.meta["env"]["onnxruntime"] and table.meta["target"]["resolution"] == 64
    assert "wrote" in built["stdout"] and "correction" in built["stdout"]


def test_the_lut_round_trips_through_csv(built: dict, tmp_path: Path) -> None:
    table = LatencyTable.load(built["lut"])
    copy = tmp_path / "copy.csv"
    table.save(copy)
    again = LatencyTable.load(copy)
    assert again.entries == table.entries and again.meta == table.meta
    assert copy.read_text() == built["lut"].read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["copy.csv"]
    genome = built["space"].random_genome(random.Random(3))
    assert again.predict(genome) == table.predict(genome)
    raw = table.predict_raw(genome)
    assert raw == pytest.approx(sum(table.layer_terms(genome)))
    scale, offset = table.correction
    assert table.predict(genome) == pytest.approx(scale * raw + offset)


def test_predict_refuses_genomes_and_targets_the_lut_was_not_built_for(built: dict) -> None:
    table = LatencyTable.load(built["lut"])
    skeleton = built["space"].skeleton
    with pytest.raises(UsageError, match="classifier was measured for 10"):
        table.predict(skeleton.with_changes(num_classes=1000))
    with pytest.raises(UsageError, match="not in the LUT's space 'tiny'"):
        table.predict(skeleton.with_changes(width=2.0))
    with pytest.raises(UsageError, match="built for resolution 64, not 224"):
        table.ensure_matches(resolution=224)
    with pytest.raises(UsageError, match="built for backend onnxruntime, not mindspore"):
        table.ensure_matches(backend="mindspore")
    other = SearchSpace.from_yaml(Path(__file__).parents[1] / "configs" / "space" / "mixnet_s.yaml")
    with pytest.raises(UsageError, match="built for space 'tiny'"):
        table.ensure_matches(other)
    table.ensure_matches(built["space"], backend="onnxruntime", device="CPU", resolution=64, batch=1)


def test_lut_check_scores_held_out_genomes(built: dict) -> None:
    table = LatencyTable.load(built["lut"])
    report = check_lut(table, 4, seed=5, warmup=2, repeats=10, progress=False)
    assert report["n"] == 4 and 0 <= report["within_10pct"] <= 1 and report["mape"] >= 0
    assert -1 <= report["kendall_tau"] <= 1 and set(report["uncorrected"]) >= {"within_10pct", "mape"}
    calibration = {e.option for e in table.calibration}
    assert not calibration & {row["genome"] for row in report["genomes"]}
    assert sum(report["histogram"].values()) == 4


def test_lut_check_and_predict_on_the_command_line(built: dict) -> None:
    proc = run_cli("lut", "check", "--lut", str(built["lut"]), "--space", str(built["space_file"]),
                   "--genomes", "3", "--warmup", "2", "--repeats", "10", "--no-cache", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["n"] == 3 and {"within_10pct", "mape", "kendall_tau"} <= set(report)
    skeleton = built["space"].skeleton.to_string()
    proc = run_cli("lut", "predict", "--lut", str(built["lut"]), skeleton, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    predicted = json.loads(proc.stdout)
    assert predicted["predicted_ms"] == pytest.approx(LatencyTable.load(built["lut"]).predict(built["space"].skeleton))


def test_lut_commands_reject_a_mismatched_lut(built: dict) -> None:
    lut, space_file = str(built["lut"]), str(built["space_file"])
    assert_user_error(run_cli("lut", "predict", "--lut", lut, "mixnet_s", "--resolution", "224"),
                      "built for resolution 64, not 224")
    assert_user_error(run_cli("lut", "check", "--lut", lut, "--space", "configs/space/mixnet_s.yaml",
                              "--genomes", "3"), "built for space 'tiny'")
    assert_user_error(run_cli("lut", "check", "--lut", lut, "--space", space_file, "--genomes", "3",
                              "--backend", "mindspore"), "built for backend onnxruntime, not mindspore")
    assert_user_error(run_cli("lut", "predict", "--lut", space_file, "mixnet_s"), "is not a MixNAS LUT")


def test_scores_and_correction_arithmetic() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    s = scores([10.0, 20.0, 40.0], [10.5, 25.0, 40.0])
    assert s["within_10pct"] == pytest.approx(2 / 3) and s["mape"] == pytest.approx((5 + 25 + 0) / 3)
    scale, offset = fit_correction([1.0, 2.0, 3.0], [2.5, 4.5, 6.5])
    assert scale == pytest.approx(2.0) and offset == pytest.approx(0.5)
    assert fit_correction([], []) == (1.0, 0.0)
    assert fit_correction([1.0, 1.01], [3.0, 2.0]) == (1.0, pytest.approx(1.495))


def test_calibration_starts_at_the_lightest_and_heaviest_genomes(built: dict) -> None:
    space = built["space"]
    genomes = calibration_genomes(space, 4, seed=0)
    light, heavy = (g.normalized().single_genes() for g in genomes[:2])
    assert [(b.kernel_sizes, b.expand_ratio) for b in light[1:]] == [((3,), 3)] * 2
    assert [(b.kernel_sizes, b.expand_ratio) for b in heavy[1:]] == [((3, 5, 7), 6)] * 2
    assert len({g.key() for g in genomes}) == 4 and all(space.contains(g) for g in genomes)
    table = LatencyTable.load(built["lut"])
    assert {e.option for e in table.calibration} >= {genomes[0].to_string(), genomes[1].to_string()}
    assert table.correction[0] > 0 and table.predict(space.skeleton) > 0
