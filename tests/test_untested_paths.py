"""User paths beyond the first run: every shipped config loads, ``export`` to ONNX and MindIR computes the
network's logits, Pareto objectives and budgets on params, MAdds and latency, and uniform supernet sampling.

Searches here use the stand-in trainer of test_search_paths.py (a fixed top-1 per genome): what they test
is the goal, the front and the budgets, not training.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import mindspore as ms
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from mindspore import nn

from conftest import ROOT
from mixnet import create_model
from search.cli import main
from search.config import load_search_config
from search.recipes import proxy_train_config, reference_train_config
from search.report import write_outputs
from search.runner import run_search
from search.supernet.training import supernet_recipe, train_supernet
from space import parse_genome
from space.cost import network_cost
from space.search_space import SearchSpace
from test_search import DATA, completed, digits_dir, tiny_config  # noqa: F401 - the fixture is shared
from test_search_paths import StubTrain, stub_top1
from trainer.config import load_config

TINY = SearchSpace.from_yaml(DATA / "tiny_space.yaml")
TINY_GENOMES = [TINY.decode_vector(v) for v in itertools.product(*(range(len(d.choices)) for d in TINY.dimensions))]
SEARCH_CONFIGS = sorted((ROOT / "configs" / "search").glob("*.yaml"))
TRAIN_CONFIGS = sorted((ROOT / "configs" / "train").glob("*.yaml"))
# every kind of layer MixNet-S has: plain and grouped pointwise convolutions, 1 to 4 kernel groups, SE, swish,
# a residual block
SMALL_GENOME = ("stem8_head64_w1_d0.1_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3_a1.1_p1.1_s2_e6_i8_o16_re,"
                "r1_k3.5.7_a1_p1.1_s2_e3_i16_o24_se0.5_sw_sesw,r1_k3.5.7.9_a1.1_p1.1_s1_e3_i24_o24_se0.5_sw_sesw")


@pytest.mark.parametrize("path", SEARCH_CONFIGS, ids=lambda p: p.name)
def test_shipped_search_config_loads_with_its_space_and_recipes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)   # the configs name their files relative to the repository
    cfg = load_search_config(path.relative_to(ROOT))
    space = SearchSpace.from_yaml(cfg.space)
    assert space.contains(space.skeleton) and space.cardinality > 1
    assert proxy_train_config(cfg).epoch_size < reference_train_config(cfg).epoch_size
    if cfg.accuracy.source == "supernet":
        cfg.supernet.spec_of(space)
        assert supernet_recipe(cfg).ckpt_save_dir == str(cfg.out_dir / "supernet")


def test_shipped_search_configs_keep_their_studies_and_outputs_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert {"demo.yaml", "demo_halving.yaml", "imagenet.yaml", "supernet_demo.yaml"} <= {p.name for p in SEARCH_CONFIGS}
    configs = [load_search_config(p.relative_to(ROOT)) for p in SEARCH_CONFIGS]
    assert len({c.out_dir for c in configs}) == len({c.storage.study for c in configs}) == len(configs)


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_shipped_train_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert parse_genome(cfg.genome or cfg.model).blocks   # the network it trains is known


def test_export_to_onnx_and_mindir_computes_the_networks_logits(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """A network with trained-looking weights (BatchNorm statistics too) exported with ``--ckpt_path``: ONNX
    Runtime and MindSpore's MindIR runtime give its logits on the same images (``search.py export``, run here in
    the test's process)."""
    rng = np.random.default_rng(0)
    net = create_model(SMALL_GENOME, mixconv_impl="split")
    for p in net.get_parameters():
        if p.name.endswith("moving_mean"):
            p.set_data(ms.Tensor(rng.normal(0.0, 0.5, p.shape).astype(np.float32)))
        elif p.name.endswith("moving_variance"):
            p.set_data(ms.Tensor(rng.uniform(0.5, 2.0, p.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(tmp_path / "weights.ckpt"))
    net.set_train(False)
    images = rng.normal(size=(2, 3, 32, 32)).astype(np.float32)
    logits = net(ms.Tensor(images)).asnumpy()
    assert logits.shape == (2, 10) and np.abs(logits).max() > 0.1
    tolerance = {"rtol": 1e-4, "atol": 1e-4 * float(np.abs(logits).max())}
    for fmt in ("ONNX", "MINDIR"):
        out = tmp_path / f"net.{fmt.lower()}"
        status = main(["export", SMALL_GENOME, "--format", fmt, "--ckpt_path", str(tmp_path / "weights.ckpt"),
                       "--resolution", "32", "--batch", "2", "--out", str(out)])
        printed = capsys.readouterr()
        assert status == 0, printed.err[-2000:]
        assert printed.out.strip() == f"wrote {out} ({fmt}, input 2x3x32x32)"
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    np.testing.assert_allclose(session.run(None, {"images": images})[0], logits, **tolerance)
    graph = nn.GraphCell(ms.load(str(tmp_path / "net.mindir")))
    np.testing.assert_allclose(graph(ms.Tensor(images)).asnumpy(), logits, **tolerance)


def hashed_latency(genome) -> float:
    """A stand-in latency (ms, 1.00-4.99) fixed per genome and unrelated to its size."""
    return 1.0 + int(hashlib.sha256(genome.key().encode()).hexdigest()[:6], 16) % 400 / 100


def non_dominated(rows: pd.DataFrame, metrics: list[str]) -> set[int]:
    """Trial numbers no other row dominates (accuracy maximized, every other metric minimized)."""
    signed = rows[metrics].to_numpy(dtype=float) * np.array([-1.0 if m == "accuracy" else 1.0 for m in metrics])
    return {int(n) for n, a in zip(rows.number, signed)
            if not any((b <= a).all() and (b < a).any() for b in signed)}


LIMITS = {"latency_ms": sorted(hashed_latency(g) for g in TINY_GENOMES)[10],   # 10 of the 16 genomes within
          "madds": sorted(network_cost(g, 64).madds for g in TINY_GENOMES)[10]}   # at 64 px, the tiny config's


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> tuple:  # noqa: F811
    """A Pareto search of accuracy, params and MAdds with budgets on latency and MAdds: its config, study,
    stand-in trainer and front."""
    folder = tmp_path_factory.mktemp("budgeted")
    train = StubTrain()
    cfg = load_search_config(tiny_config(folder, digits_dir, objectives=["accuracy", "params", "madds"],
                                         constraints=LIMITS, trials=12, sampler="random", seed=2))
    study = run_search(cfg, show_progress=False, train_fn=train, latency_fn=hashed_latency)
    front = write_outputs(study, cfg.out_dir, cfg.goal.front_objectives)
    return cfg, study, train, front


def test_objectives_params_and_madds_make_the_front_over_them(budgeted: tuple) -> None:
    cfg, study, _, _ = budgeted
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    assert study.metric_names == ["accuracy", "params", "madds"]
    done = completed(study)
    assert len(done) == 12
    for t in done:
        genome = parse_genome(t.user_attrs["genome"])
        cost = network_cost(genome, 64)
        accuracy = stub_top1(genome) / 100 if t.user_attrs["feasible"] else 0.0
        assert t.values == pytest.approx([accuracy, cost.params, cost.madds])
    trials = pd.read_csv(cfg.out_dir / "trials.csv")
    candidates = trials[trials.reused_from.isna() & trials.feasible]
    front = set(pd.read_csv(cfg.out_dir / "pareto.csv").number)
    assert front == non_dominated(candidates, ["accuracy", "params", "madds", "latency_ms"])
    assert front != non_dominated(candidates, ["accuracy", "latency_ms"])   # the costs put more genomes on it
    assert len(list((cfg.out_dir / "best").glob("*.yaml"))) == len(front)


def test_budgets_on_latency_and_madds_mark_trials_over_them_infeasible_untrained(budgeted: tuple) -> None:
    _, study, train, front = budgeted
    trained = {g.key() for g in train.genomes}
    over = {name: 0 for name in LIMITS}
    for t in completed(study):
        genome = parse_genome(t.user_attrs["genome"])
        values = {"latency_ms": hashed_latency(genome), "madds": network_cost(genome, 64).madds}
        assert t.constraints == pytest.approx({m: values[m] - LIMITS[m] for m in LIMITS})
        feasible = all(values[m] <= LIMITS[m] for m in LIMITS)
        assert t.user_attrs["feasible"] == feasible
        assert (parse_genome(t.user_attrs["proxy_genome"]).key() in trained) == feasible
        for m in LIMITS:
            over[m] += values[m] > LIMITS[m]
    assert over["latency_ms"] and over["madds"]   # each budget turned some genome down
    assert not front.empty and front.feasible.all()


class RecordedSelect:
    """A supernet seen through ``select`` only: each genome selected is recorded, then selected."""

    def __init__(self, net, genomes: list) -> None:
        self.net, self.genomes = net, genomes

    def select(self, genome) -> None:
        """Record ``genome`` and select it on the supernet."""
        self.genomes.append(genome)
        self.net.select(genome)


class SelectionLog:
    """Stands between the supernet's networks and the trainer: records the genome each training step selects
    on the network."""

    def __init__(self, networks, genomes: list) -> None:
        self.networks, self.genomes = networks, genomes

    def build(self, genome, cfg):
        """The supernet the wrapped networks build."""
        return self.networks.build(genome, cfg)

    def before_step(self, net, step: int) -> None:
        """The wrapped networks' step, its selection recorded."""
        self.networks.before_step(RecordedSelect(net, self.genomes), step)

    def before_validation(self, net) -> None:
        """The wrapped networks' validation."""
        self.networks.before_validation(net)


def test_uniform_supernet_sampling_draws_each_step_independently(
        tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811 - fixture
    """``supernet.sampling: uniform`` (the default is FairNAS's fair sampling, where every 2 steps train both
    choices of every layer of the tiny space): the steps train random genomes, a choice twice in a row too."""
    from trainer import train
    cfg = load_search_config(tiny_config(tmp_path, digits_dir, accuracy={"source": "supernet"},
                                         supernet={"sampling": "uniform", "overrides": {"epoch_size": 1},
                                                   "calibration_batches": 2}))
    genomes: list = []

    def logged(recipe, genome, networks, **kwargs):
        return train(recipe, genome, networks=SelectionLog(networks, genomes), **kwargs)

    result = train_supernet(cfg, progress=False, train_fn=logged)
    assert result.epochs == 1 and (cfg.supernet.dir / "best.ckpt").is_file()
    assert len(genomes) == 11 and all(TINY.contains(g) for g in genomes)   # 180 images in steps of 16
    choices = [TINY.encode_vector(g) for g in genomes]
    pairs = [(a[d], b[d]) for a, b in zip(choices[0::2], choices[1::2]) for d in range(len(TINY.dimensions))]
    assert any(a == b for a, b in pairs)   # fair sampling never repeats a choice within a pair of steps
    assert len({tuple(c) for c in choices}) >= 4
