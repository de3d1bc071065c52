"""The per-block LUT: CLI build, CSV round trip, prediction, compatibility checks, accuracy check."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import statistics
from pathlib import Path

import pytest
import yaml

from conftest import assert_user_error, run_cli
from search.latency import LatencyCache, LatencyTable, LatencyTarget
from search.latency.accuracy import check_lut, scores
from search.latency.environment import env_key
from search.ranking import kendall_tau
from search.latency.lut import fit_correction
from search.latency.lut_build import calibration_genomes, extreme_genomes, lut_parts
from search.latency.sources import TableLatency
from space import parse_genome
from space.basics.errors import UsageError
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
    # 13 parts: exported by two processes, then timed here
    assert "lut build" in proc.stderr and "exporting parts" in proc.stderr and "timing parts" in proc.stderr
    return {"root": root, "space_file": space_file, "lut": lut, "stdout": proc.stdout,
            "space": SearchSpace.from_yaml(space_file)}


def test_the_lut_has_every_choice_of_every_layer_and_fixed_terms(built: dict) -> None:
    table = LatencyTable.load(built["lut"])
    parts = [(e.part, e.layer, e.option) for e in table.entries]
    assert parts[0] == ("stem", -1, "fixed")
    assert ("layer", 0, "k3_e1") in parts and ("layer", 0, "k3.5.7_e1") in parts
    assert {p[2] for p in parts if p[:2] == ("layer", 2)} == {"k3_e3", "k3_e6", "k3.5.7_e3", "k3.5.7_e6"}
    assert [p[0] for p in parts].count("network") == 3
    # the calibration genomes' timings are stored in the cache under the LUT's environment
    cache = LatencyCache(built["root"] / "cache.sqlite")
    assert len(cache) == 3
    for e in table.entries[-3:]:
        hit = cache.get(parse_genome(e.option), LatencyTarget(**table.meta["target"]),
                        env_key(table.meta["env"]), min_repeats=20)
        assert hit is not None and hit.median_ms == e.median_ms
    assert ("head", -1, "fixed") in parts and ("classifier", -1, "fixed") in parts
    assert all(e.median_ms > 0 and e.repeats >= 20 for e in table.entries)
    layer2 = {e.option: e for e in table.entries if e.layer == 2}
    assert layer2["k3_e3"].in_shape == "16x16x16"
    assert table.meta["env"]["onnxruntime"] and table.meta["target"]["resolution"] == 64
    assert table.mixconv_impl == "split"  # the ONNX exports' implementation
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


def csv_terms(path: Path, column: str = "median_ms") -> dict[tuple[str, int, str], float]:
    """The LUT file's rows read by hand: (part, layer, option) -> the column's value."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# mixnas-lut {")
    return {(r["part"], int(r["layer"]), r["option"]): float(r[column]) for r in csv.DictReader(lines[1:])}


def layer_option(block) -> str:
    """The LUT's name of a one-layer block's choice in the tiny space, e.g. ``k3.5.7_e6``."""
    assert block.repeats == 1
    return f"k{'.'.join(map(str, block.kernel_sizes))}_e{block.expand_ratio}"


def hand_sum(terms: dict, genome) -> float:
    """Stem + every layer's chosen option + head + classifier, from the CSV rows."""
    layers = [terms[("layer", i, layer_option(b))] for i, b in enumerate(genome.blocks)]
    return terms[("stem", -1, "fixed")] + sum(layers) + terms[("head", -1, "fixed")] + \
        terms[("classifier", -1, "fixed")]


def hand_correction(terms: dict) -> tuple[float, float]:
    """The Theil-Sen line through the calibration rows: median pairwise slope, then median offset."""
    points = [(hand_sum(terms, parse_genome(option)), measured) for (part, _, option), measured in terms.items()
              if part == "network"]
    slopes = sorted((m2 - m1) / (r2 - r1) for (r1, m1), (r2, m2) in itertools.combinations(points, 2))
    scale = statistics.median(slopes)
    scale = scale if scale > 0 else 1.0
    return scale, statistics.median(m - scale * r for r, m in points)


def hand_tau(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b, pair by pair."""
    pairs = list(itertools.combinations(range(len(x)), 2))
    sign = [(x[i] > x[j]) - (x[i] < x[j]) for i, j in pairs], [(y[i] > y[j]) - (y[i] < y[j]) for i, j in pairs]
    untied_x, untied_y = sum(s != 0 for s in sign[0]), sum(s != 0 for s in sign[1])
    return sum(a * b for a, b in zip(*sign)) / math.sqrt(untied_x * untied_y)


def assert_scores_recompute(report: dict, terms: dict) -> None:
    """Every number of a ``lut check`` report follows from its per-genome rows and the CSV's rows."""
    scale, offset = hand_correction(terms)
    assert report["correction"]["scale"] == pytest.approx(scale) and \
        report["correction"]["offset_ms"] == pytest.approx(offset, abs=1e-9)
    rows = report["genomes"]
    assert report["n"] == len(rows) == len({r["genome"] for r in rows})
    for row in rows:
        raw = hand_sum(terms, parse_genome(row["genome"]))
        assert row["raw_ms"] == pytest.approx(raw) and row["predicted_ms"] == pytest.approx(scale * raw + offset)
        assert row["measured_ms"] > 0
    measured = [r["measured_ms"] for r in rows]
    for scored, key in ((report, "predicted_ms"), (report["uncorrected"], "raw_ms")):
        errors = [100 * (r[key] - r["measured_ms"]) / r["measured_ms"] for r in rows]
        assert scored["within_10pct"] == pytest.approx(sum(abs(e) <= 10 for e in errors) / len(rows))
        assert scored["mape"] == pytest.approx(sum(map(abs, errors)) / len(rows))
        assert scored["kendall_tau"] == pytest.approx(hand_tau(measured, [r[key] for r in rows]))
        bins = [sum(lo <= e < hi for e in errors) for lo, hi in
                zip([-math.inf, -10, -5, -2, 2, 5, 10], [-10, -5, -2, 2, 5, 10, math.inf])]
        assert list(scored["histogram"].values()) == bins


def test_lut_check_scores_held_out_genomes(built: dict, tmp_path: Path) -> None:
    table = LatencyTable.load(built["lut"])
    terms = csv_terms(built["lut"])
    cache = LatencyCache(tmp_path / "held_out.sqlite")
    report = check_lut(table, 4, seed=5, cache=cache, warmup=2, repeats=10, progress=False)
    assert report["n"] == 4 and report["correction"]["calibration_genomes"] == 3
    calibration = [parse_genome(e.option) for e in table.calibration]
    held_out = [parse_genome(r["genome"]) for r in report["genomes"]]
    assert all(built["space"].contains(g) for g in held_out)
    assert not {g.key() for g in calibration} & {g.key() for g in held_out}
    assert_scores_recompute(report, terms)

    # A table with one layer choice timed far too slow (its plain and corrected terms grow by twice the
    # slowest measurement), a choice that no calibration genome uses, so the correction stays as it is:
    # every held-out genome using it is predicted far off, the others as before.
    used = {("layer", i, layer_option(b)) for g in calibration for i, b in enumerate(g.blocks)}
    wrong_part = next(("layer", i, layer_option(b)) for g in held_out for i, b in enumerate(g.blocks)
                      if ("layer", i, layer_option(b)) not in used)
    hit = [wrong_part[2] == layer_option(g.blocks[wrong_part[1]]) for g in held_out]
    lines = built["lut"].read_text().splitlines(keepends=True)
    reader = list(csv.DictReader(lines[1:]))
    for row in reader:
        if (row["part"], int(row["layer"]), row["option"]) == wrong_part:
            slowest = max(r["measured_ms"] for r in report["genomes"])
            row["median_ms"] = str(float(row["median_ms"]) + 2 * slowest / min(1.0, table.correction[0]))
    bad_file = tmp_path / "wrong_lut.csv"
    with bad_file.open("w", newline="") as handle:
        handle.write(lines[0])
        writer = csv.DictWriter(handle, fieldnames=list(reader[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(reader)
    wrong = LatencyTable.load(bad_file)
    assert wrong.correction == pytest.approx(table.correction)
    bad = check_lut(wrong, 4, seed=5, cache=cache, warmup=2, repeats=10, progress=False)
    assert [r["genome"] for r in bad["genomes"]] == [r["genome"] for r in report["genomes"]]
    assert [r["measured_ms"] for r in bad["genomes"]] == [r["measured_ms"] for r in report["genomes"]]
    assert_scores_recompute(bad, csv_terms(bad_file))
    good_errors = [abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in report["genomes"]]
    bad_errors = [abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in bad["genomes"]]
    for was, now, affected in zip(good_errors, bad_errors, hit):
        assert (now > max(was, 0.1)) if affected else now == pytest.approx(was)
    assert bad["mape"] > report["mape"] and bad["uncorrected"]["mape"] > report["uncorrected"]["mape"]
    assert bad["within_10pct"] == pytest.approx(sum(e <= 0.1 for e, a in zip(good_errors, hit) if not a) / 4)


def test_lut_check_and_predict_on_the_command_line(built: dict) -> None:
    terms = csv_terms(built["lut"])
    proc = run_cli("lut", "check", "--lut", str(built["lut"]), "--space", str(built["space_file"]),
                   "--genomes", "3", "--warmup", "2", "--repeats", "10", "--no-cache", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["n"] == 3
    assert_scores_recompute(report, terms)
    scale, offset = hand_correction(terms)
    space = built["space"]
    for genome in (space.skeleton, extreme_genomes(space)[1]):
        proc = run_cli("lut", "predict", "--lut", str(built["lut"]), genome.to_string(), "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        predicted = json.loads(proc.stdout)
        raw = hand_sum(terms, genome)
        assert predicted["raw_ms"] == pytest.approx(raw)
        assert predicted["predicted_ms"] == pytest.approx(scale * raw + offset)
        assert (predicted["key"], predicted["resolution"], predicted["backend"]) == (genome.key(), 64, "onnxruntime")


def test_lut_commands_reject_a_mismatched_lut(built: dict) -> None:
    lut, space_file = str(built["lut"]), str(built["space_file"])
    assert_user_error(run_cli("lut", "predict", "--lut", lut, "mixnet_s", "--resolution", "224"),
                      "built for resolution 64, not 224")
    assert_user_error(run_cli("lut", "check", "--lut", lut, "--space", "configs/space/mixnet_s.yaml",
                              "--genomes", "3"), "built for space 'tiny'")
    assert_user_error(run_cli("lut", "check", "--lut", lut, "--space", space_file, "--genomes", "3",
                              "--backend", "mindspore"), "built for backend onnxruntime, not mindspore")
    assert_user_error(run_cli("lut", "predict", "--lut", space_file, "mixnet_s"), "is not a MixNAS LUT")


def test_a_search_refuses_a_lut_of_other_threads_device_or_implementation(built: dict, tmp_path: Path) -> None:
    lut, space = str(built["lut"]), built["space"]
    TableLatency(lut, space, LatencyTarget(resolution=64, threads=1, device_id=0))  # the LUT's own target
    with pytest.raises(UsageError, match="built for device_id 0, not 1 - .* --device-id 1'$"):
        TableLatency(lut, space, LatencyTarget(resolution=64, device_id=1))
    first, _, rest = built["lut"].read_text().partition("\n")
    meta = json.loads(first[len("# mixnas-lut "):])
    meta["env"]["mixconv_impl"] = "kernels"
    other_impl = tmp_path / "kernels_lut.csv"
    other_impl.write_text(f"# mixnas-lut {json.dumps(meta)}\n{rest}")
    with pytest.raises(UsageError, match="built with mixconv_impl kernels, not split"):
        TableLatency(str(other_impl), space, LatencyTarget(resolution=64))
    config = tmp_path / "search.yaml"  # data that is not there: a search that went past the LUT stops at it
    config.write_text(yaml.safe_dump({"space": str(built["space_file"]), "out": str(tmp_path / "search"),
                                      "data": {"dataset": "imagefolder", "data_dir": str(tmp_path / "nowhere")},
                                      "latency": {"source": "lut", "lut": lut, "resolution": 64, "threads": 2}}))
    assert_user_error(run_cli("run", "--config", str(config)), "latency.lut", "built for threads 1, not 2",
                      "--threads 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernels_lut.csv", "search.yaml"]


def test_a_layer_choice_that_makes_no_valid_layer_is_named(tmp_path: Path) -> None:
    space_file = tmp_path / "broken.yaml"
    space_file.write_text(TINY_SPACE.replace("name: tiny", "name: broken").replace(
        "0: {expand_ratio: [1]}", "0: {expand_ratio: [1], project_groups: [1, 16]}"))
    message = ("space 'broken' layer 0 choice k3_e1_p16: block 1: 8 channels cannot be split into 16 "
               "projection groups - remove it from the layer's menu")
    with pytest.raises(UsageError) as info:
        lut_parts(SearchSpace.from_yaml(space_file), 64)
    assert str(info.value) == message
    out = tmp_path / "broken_lut.csv"
    assert_user_error(run_cli("lut", "build", "--space", str(space_file), "--resolution", "64", "--out", str(out)),
                      message)
    assert not out.exists()


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


def test_fixed_parts_are_the_cells_of_one_skeleton_network(tmp_path: Path) -> None:
    import mindspore as ms
    import numpy as np

    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
    parts = lut_parts(SearchSpace.from_yaml(space_file), 64, "custom")
    fixed = {p.part: p for p in parts if p.option == "fixed"}
    stem, head, classifier = (fixed[name].build() for name in ("stem", "head", "classifier"))
    assert fixed["stem"].build() is stem and type(stem.compute).__module__ == "mixnet.mixconv.kernels"
    assert [p.name for p in stem.get_parameters()][0] == "stem_conv.0.weight"
    assert [p.name for p in head.get_parameters()][0] == "head_conv.0.weight"
    assert [p.name for p in classifier.get_parameters()] == ["classifier.weight", "classifier.bias"]
    classifier.set_train(False)
    logits = classifier(ms.Tensor(np.ones((1, *fixed["classifier"].in_shape), np.float32)))
    assert logits.shape == (1, 10)
    layers = [p for p in parts if p.part == "layer"]
    assert len(layers) == 2 + 4 + 4 and type(layers[-1].build().compute).__module__ == "mixnet.mixconv.kernels"
