"""Offline measurement through MindIR: export genomes with a manifest on one host, measure the manifest
on a device host, import the results CSV into the cache on the first host."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from space.basics.documents import load_mapping
from space.basics.errors import GenomeError, UsageError
from space.genome import Genome
from space.parse import parse_genome

from space.basics.atomic import write_atomic
from .cache import LatencyCache
from .environment import env_key, environment, package_version
from .protocol import DEFAULT_REPEATS, DEFAULT_WARMUP, MIN_SPAN_S, LatencyResult, check_protocol, time_runs
from .target import EXPORT_IMPL, LatencyTarget, check_target

MANIFEST_FORMAT = "mixnas-mindir-manifest"
MANIFEST_NAME = "manifest.json"
RESULT_COLUMNS = ("genome_key", "genome", "backend", "device", "batch", "resolution", "threads",
                  "median_ms", "p90_ms", "min_ms", "mean_ms", "cv", "repeats", "env")
# The columns a result is filed under in the cache, which its environment must repeat.
TARGET_COLUMNS = ("genome_key", "backend", "device", "batch", "resolution", "threads")


def export_batch(genomes: list[Genome], batch: int, resolution: int, out_dir: "str | Path",
                 progress: bool = True) -> Path:
    """Export each genome to ``out_dir/<key>.mindir`` and write ``out_dir/manifest.json``; returns it."""
    from tqdm import tqdm

    from mixnet import create_model

    from .backends.mindir import export_mindir

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = (batch, 3, resolution, resolution)
    models = []
    for genome in tqdm(genomes, desc="mindir export", unit="genome", file=sys.stderr, disable=not progress):
        key = genome.key()
        if not (out_dir / f"{key}.mindir").is_file():
            net = create_model(genome, mixconv_impl=EXPORT_IMPL)
            net.set_train(False)
            export_mindir(net, shape, out_dir / key)
        models.append({"key": key, "genome": genome.to_string(), "file": f"{key}.mindir"})
    manifest = {"format": MANIFEST_FORMAT, "version": 1, "batch": batch, "resolution": resolution,
                "input_shape": list(shape), "mindspore": package_version("mindspore"), "models": models}
    path = out_dir / MANIFEST_NAME
    write_atomic(path, json.dumps(manifest, indent=1) + "\n")
    return path


def read_manifest(path: "str | Path") -> dict:
    """A manifest written by ``export_batch``; anything else is a UsageError."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    manifest = load_mapping(path, "manifest")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise UsageError(f"manifest '{path}' is not a MixNAS MindIR manifest (format {MANIFEST_FORMAT})")
    manifest["dir"] = path.parent
    return manifest


def result_row(genome_key: str, genome: str, result: LatencyResult) -> dict:
    """One results-CSV row; the full environment is kept as JSON."""
    env = result.env
    return {"genome_key": genome_key, "genome": genome, "backend": env["backend"], "device": env["device"],
            "batch": env["batch"], "resolution": env["resolution"], "threads": env["threads"],
            "median_ms": result.median_ms, "p90_ms": result.p90_ms, "min_ms": result.min_ms,
            "mean_ms": result.mean_ms, "cv": result.cv, "repeats": result.repeats,
            "env": json.dumps(env, sort_keys=True)}


def write_results(path: Path, rows: list[dict]) -> None:
    """Write the results CSV atomically."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def read_results(path: "str | Path") -> list[dict]:
    """Rows of a results CSV (UsageError when missing or without the expected columns)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"results file '{path}' not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in RESULT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"results file '{path}' lacks columns {', '.join(missing)} - expected "
                             f"the CSV written by 'search.py mindir measure'")
        return list(reader)


def measure_manifest(manifest_path: "str | Path", device: str, out: "str | Path", device_id: int = 0,
                     threads: int | None = None, warmup: int = DEFAULT_WARMUP,
                     repeats: int = DEFAULT_REPEATS, min_span_s: float = MIN_SPAN_S,
                     progress: bool = True) -> list[dict]:
    """On the device host: time every MindIR of a manifest with ``mindspore.load`` + GraphCell.

    Returns the rows of the results CSV (as read back from it); ``min_span_s``: see ``time_runs``.

    The results CSV is rewritten (atomically) after each model, and models already in ``out``
    for the same environment are skipped, so an interrupted run resumes.
    """
    from tqdm import tqdm

    from .backends.mindir import mindir_runner

    manifest = read_manifest(manifest_path)
    target = LatencyTarget(backend="mindir", device=device, batch=manifest["batch"],
                           resolution=manifest["resolution"], device_id=device_id, threads=threads)
    check_target(target)
    check_protocol(warmup, repeats, min_span_s)
    env = environment(target, EXPORT_IMPL)
    out = Path(out)
    previous = read_results(out) if out.is_file() else []
    rows = [r for r in previous if env_key(json.loads(r["env"])) == env_key(env)]
    done = {r["genome_key"] for r in rows}
    shape = tuple(manifest["input_shape"])
    for model in tqdm(manifest["models"], desc="mindir measure", unit="model", file=sys.stderr,
                      disable=not progress):
        if model["key"] in done:
            continue
        runner = mindir_runner(manifest["dir"] / model["file"], shape, target)
        result = time_runs(runner, warmup, repeats, dict(env, genome_key=model["key"]), min_span_s)
        rows.append(result_row(model["key"], model["genome"], result))
        write_results(out, rows)
    return read_results(out) if out.is_file() else []


def check_imported(row: dict, env: dict, warmup: int, repeats: int) -> None:
    """Raise UsageError when a result's environment is not that of the target it is filed under,
    it is not a MindIR result, or it had fewer warm-up or timed runs than asked."""
    key = row["genome_key"]
    if not isinstance(env, dict):
        raise UsageError(f"genome {key}: env is not a JSON object")
    for name in TARGET_COLUMNS:
        if str(env.get(name)) != row[name]:
            raise UsageError(f"genome {key}: {name} {row[name]!r} but its env says {env.get(name)!r}")
    if env["backend"] != "mindir":
        raise UsageError(f"genome {key}: backend {env['backend']!r} - 'mindir import' takes mindir results only")
    LatencyTarget(backend=env["backend"], device=env["device"], batch=env["batch"],  # checks the values
                  resolution=env["resolution"], threads=env["threads"])
    if int(row["repeats"]) < repeats:
        raise UsageError(f"genome {key}: repeats {row['repeats']} - the protocol asks for at least {repeats}")
    if not isinstance(env.get("warmup"), int) or env["warmup"] < warmup:
        raise UsageError(f"genome {key}: warmup {env.get('warmup')!r} - the protocol asks for at least {warmup}")


def import_results(path: "str | Path", cache: LatencyCache, warmup: int = DEFAULT_WARMUP,
                   repeats: int = DEFAULT_REPEATS) -> int:
    """Load a results CSV into the cache; returns how many results were stored.

    Every row is checked first (``check_imported``): its environment must match the columns it is
    filed under and show at least ``warmup`` warm-up and ``repeats`` timed runs; a row that does
    not is a UsageError naming the file, line, genome and field, and nothing is stored.
    """
    rows = read_results(path)
    parsed: list[tuple[Genome, LatencyResult]] = []
    for n, row in enumerate(rows, start=2):
        try:
            genome = parse_genome(row["genome"])
            env = json.loads(row["env"])
            result = LatencyResult(median_ms=float(row["median_ms"]), p90_ms=float(row["p90_ms"]),
                                   min_ms=float(row["min_ms"]), mean_ms=float(row["mean_ms"]),
                                   cv=float(row["cv"]), repeats=int(row["repeats"]), env=env)
        except (GenomeError, ValueError, json.JSONDecodeError) as exc:
            raise UsageError(f"results file '{path}' line {n}: {exc}") from None
        if genome.key() != row["genome_key"]:
            raise UsageError(f"results file '{path}' line {n}: genome_key {row['genome_key']} does not "
                             f"match its genome ({genome.key()})")
        try:
            check_imported(row, env, warmup, repeats)
        except UsageError as exc:
            raise UsageError(f"results file '{path}' line {n}: {exc}") from None
        parsed.append((genome, result))
    for genome, result in parsed:
        cache.put(genome, result)
    return len(rows)
