"""The per-block latency lookup table: entries, CSV form, prediction and its linear correction.

CSV layout: a first line ``# mixnas-lut {json}`` with the space, target, environment and
protocol, then one row per measured part:

* ``stem``, ``head``, ``classifier``: the fixed terms (layer -1);
* ``layer``: one choice (``option``, e.g. ``k3.5.7_e6``) of one layer at its input shape;
* ``network``: a whole calibration genome (``option`` is its canonical form), measured end to end.

A genome's raw prediction is the sum of its stem, layer and head terms. The calibration rows fit
``measured = scale * raw + offset`` (a robust Theil-Sen line), which absorbs the per-call
overhead counted once per part in the sum and the cross-block effects (cache, fusion) it misses.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from space.basics.errors import UsageError
from space.genome import Genome
from space.parse import parse_genome
from space.search_space import FIELDS, SHORT, SearchSpace, choice_of

from space.basics.atomic import write_atomic
from .target import LatencyTarget

MAGIC = "# mixnas-lut "
FORMAT_VERSION = 1
STATISTICS = ("median", "min")


@dataclass(frozen=True)
class LutEntry:
    """One measured part: which part, which layer and choice, its input shape and timing (ms)."""

    part: str
    layer: int
    option: str
    in_shape: str
    median_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    cv: float
    repeats: int


COLUMNS = tuple(f.name for f in fields(LutEntry))


def option_label(space: SearchSpace, layer: int, genes: list) -> str:
    """The LUT name of a layer's choice, e.g. ``k3.5_e6`` (``fixed`` when the layer has no menu)."""
    menu = space.menus[layer]
    parts = [f"{SHORT[f]}{choice_of(f, genes[layer])}" for f in FIELDS if f in menu]
    return "_".join(parts) or "fixed"


def space_document(space: SearchSpace) -> dict:
    """What the LUT records of its space: name, skeleton, per-layer menus, and a fingerprint."""
    doc = {"skeleton": space.skeleton.to_string(),
           "menus": [{f: list(m[f]) for f in FIELDS if f in m} for m in space.menus]}
    fingerprint = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    return {"name": space.name, **doc, "fingerprint": fingerprint}


def space_from_document(doc: dict) -> SearchSpace:
    """Rebuild the space a LUT was built for."""
    menus = [{f: tuple(v) for f, v in m.items()} for m in doc["menus"]]
    return SearchSpace(parse_genome(doc["skeleton"]), menus, name=doc["name"])


def fit_correction(raw: list[float], measured: list[float]) -> tuple[float, float]:
    """``(scale, offset)`` of the Theil-Sen line ``measured = scale * raw + offset``.

    The median of pairwise slopes and the median intercept: a few calibration genomes measured
    during a burst of load do not tilt the line. More work never takes less time, so a slope that
    is not positive (noise between genomes of nearly equal sums) falls back to the sum plus the
    median offset. One point gives a ratio; none the identity.
    """
    if not raw:
        return 1.0, 0.0
    slopes = [(measured[j] - measured[i]) / (raw[j] - raw[i])
              for i in range(len(raw)) for j in range(i + 1, len(raw)) if raw[j] != raw[i]]
    if not slopes:
        return float(np.median(np.asarray(measured) / np.asarray(raw))), 0.0
    scale = float(np.median(slopes))
    if scale <= 0:
        scale = 1.0
    offset = float(np.median([m - scale * r for r, m in zip(raw, measured)]))
    return scale, offset


class LatencyTable:
    """A LUT for one space and target; ``predict`` gives a genome's latency in ms.

    ``statistic`` picks which measured value the terms and the correction use: ``median`` (the
    protocol's latency, the default) or ``min`` (the fastest run: less sensitive to load from
    other processes on a shared host).
    """

    def __init__(self, meta: dict, entries: list[LutEntry], statistic: str = "median") -> None:
        if statistic not in STATISTICS:
            raise UsageError(f"unknown statistic '{statistic}' - allowed: {', '.join(STATISTICS)}")
        self.meta = meta
        self.entries = entries
        self.statistic = statistic
        self.space = space_from_document(meta["space"])
        self.target = LatencyTarget(**meta["target"])
        column = f"{statistic}_ms"
        self.terms = {(e.part, e.layer, e.option): getattr(e, column) for e in entries if e.part != "network"}
        self.calibration = [e for e in entries if e.part == "network"]
        raw = [self.predict_raw(parse_genome(e.option)) for e in self.calibration]
        self.correction = fit_correction(raw, [getattr(e, column) for e in self.calibration])

    @classmethod
    def load(cls, path: "str | Path", statistic: str = "median") -> "LatencyTable":
        """Read a LUT CSV; a missing or malformed file is a UsageError."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"LUT file '{path}' not found")
        text = path.read_text()
        first, _, body = text.partition("\n")
        if not first.startswith(MAGIC):
            raise UsageError(f"LUT file '{path}' is not a MixNAS LUT (no '{MAGIC.strip()}' first line)")
        try:
            meta = json.loads(first[len(MAGIC):])
            rows = list(csv.DictReader(io.StringIO(body)))
            entries = [LutEntry(part=r["part"], layer=int(r["layer"]), option=r["option"],
                                in_shape=r["in_shape"], repeats=int(r["repeats"]),
                                **{k: float(r[k]) for k in ("median_ms", "p90_ms", "min_ms", "mean_ms", "cv")})
                       for r in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"LUT file '{path}' is malformed: {exc}") from None
        if meta.get("version") != FORMAT_VERSION:
            raise UsageError(f"LUT file '{path}' has format version {meta.get('version')!r}; "
                             f"this MixNAS reads version {FORMAT_VERSION}")
        return cls(meta, entries, statistic)

    def to_csv(self) -> str:
        """The CSV text: the metadata line, the header, one row per entry."""
        out = io.StringIO()
        out.write(MAGIC + json.dumps(self.meta, sort_keys=True) + "\n")
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for entry in self.entries:
            writer.writerow(asdict(entry))
        return out.getvalue()

    def save(self, path: "str | Path") -> None:
        """Write the CSV atomically (temporary file, then rename)."""
        write_atomic(path, self.to_csv())

    @property
    def mixconv_impl(self) -> str | None:
        """The MixConv implementation the LUT's parts ran with (None in a LUT that does not record it)."""
        return self.meta["env"].get("mixconv_impl")

    def ensure_matches(self, space: SearchSpace | None = None, mixconv_impl: str | None = None,
                       **target: object) -> None:
        """Raise UsageError when the LUT was built for another space, target field (backend, threads, ...)
        or MixConv implementation; a field given as None, or an implementation the LUT does not record,
        is not compared."""
        if space is not None:
            mine, theirs = self.meta["space"], space_document(space)
            if mine["fingerprint"] != theirs["fingerprint"]:
                raise UsageError(f"the LUT was built for space '{mine['name']}' (fingerprint "
                                 f"{mine['fingerprint']}), not for '{theirs['name']}' ({theirs['fingerprint']})")
        built = self.target.to_dict()
        for name, value in target.items():
            if value is not None and built[name] != value:
                raise UsageError(f"the LUT was built for {name} {built[name]}, not {value} - build one with "
                                 f"'search.py lut build ... --{name.replace('_', '-')} {value}'")
        if None not in (mixconv_impl, self.mixconv_impl) and mixconv_impl != self.mixconv_impl:
            raise UsageError(f"the LUT was built with mixconv_impl {self.mixconv_impl}, not {mixconv_impl} - "
                             "build it again on the target")

    def layer_terms(self, genome: Genome) -> list[float]:
        """The LUT term of each part of ``genome``: stem, every layer, head, classifier."""
        reason = self.space.why_not(genome)
        if reason is not None:
            raise UsageError(f"genome is not in the LUT's space '{self.space.name}': {reason}")
        if genome.num_classes != self.space.skeleton.num_classes:
            raise UsageError(f"genome has {genome.num_classes} classes; the LUT's classifier was measured "
                             f"for {self.space.skeleton.num_classes}")
        genes = genome.normalized().single_genes()
        keys = [("stem", -1, "fixed")]
        keys += [("layer", i, option_label(self.space, i, genes)) for i in range(len(genes))]
        keys += [("head", -1, "fixed"), ("classifier", -1, "fixed")]
        missing = [k for k in keys if k not in self.terms]
        if missing:
            raise UsageError(f"the LUT has no entry for {missing[0][0]} {missing[0][1]} option "
                             f"'{missing[0][2]}' - rebuild it for this space")
        return [self.terms[k] for k in keys]

    def predict_raw(self, genome: Genome) -> float:
        """The plain sum of the genome's LUT terms (ms)."""
        return float(sum(self.layer_terms(genome)))

    def predict(self, genome: Genome) -> float:
        """Predicted latency (ms): the raw sum with the calibration's linear correction."""
        scale, offset = self.correction
        return scale * self.predict_raw(genome) + offset
