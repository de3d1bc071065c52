"""Search paths beyond the default one: MnasNet's reward, the GA samplers (gp is refused), LUT latency and the
shipped search configs.

Proxy training is real in test_search.py; here a stand-in trainer gives each genome a fixed top-1
(reported after every epoch, as the trainer does), so a search of a dozen trials takes seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import ROOT, assert_user_error, run_cli
from search.config import load_search_config
from search.latency import LatencyCache
from search.mnas import mnas_reward
from search.runner import run_search
from search.recipes import reference_train_config
from space import parse_genome, preset
from space.cost import network_cost
from space.search_space import SearchSpace
from test_search import DATA, completed, digits_dir, tiny_config  # noqa: F401 - the fixture is shared

TINY_SPACE = SearchSpace.from_yaml(DATA / "tiny_space.yaml")


@dataclass
class StubResult:
    """What the search reads of a training result."""

    final_top1: float
    seconds: float = 0.0
    images_per_second: float = 0.0


def stub_top1(genome) -> float:
    """A fixed top-1 (percent) per architecture (its blocks: the same for the proxy's width and classes), 40-90."""
    return 40.0 + int(hashlib.sha256(repr(genome.blocks).encode()).hexdigest()[:6], 16) % 51


class StubTrain:
    """Stands in for ``trainer.train``: records each genome, reports its top-1 after every epoch."""

    def __init__(self) -> None:
        self.genomes: list = []

    def __call__(self, cfg, genome, on_epoch=None, **_kwargs) -> StubResult:
        self.genomes.append(genome)
        for epoch in range(int(cfg.epoch_size)):
            if on_epoch is not None:
                on_epoch(epoch, {"top1": stub_top1(genome), "top5": 100.0, "loss": 1.0, "val_loss": 1.0, "lr": 0.1})
        return StubResult(stub_top1(genome))


def cost_latency(genome) -> float:
    """A latency (ms) that grows with the genome's multiply-adds at 32 px, for searches that need no device."""
    return network_cost(genome, 32).madds / 1e5


def hand_reward(accuracy: float, latency: float, target: float, hard: bool) -> float:
    """MnasNet (Tan et al. 2019, eq. 2): ACC x (LAT/T)^w, w = alpha if LAT <= T else beta;
    soft constraint alpha = beta = -0.07, hard constraint alpha = 0, beta = -1."""
    alpha, beta = (0.0, -1.0) if hard else (-0.07, -0.07)
    return accuracy * (latency / target) ** (alpha if latency <= target else beta)


def test_mnas_reward_is_mnasnets() -> None:
    # soft: one exponent, w = -0.07, below and above the target
    assert mnas_reward(0.75, 80.0, 100.0) == pytest.approx(0.75 * 0.8 ** -0.07)
    assert mnas_reward(0.75, 125.0, 100.0) == pytest.approx(0.75 * 1.25 ** -0.07)
    assert mnas_reward(0.6, 100.0, 100.0) == pytest.approx(0.6)
    # MnasNet's reading of w = -0.07: twice the latency must buy about 5% more accuracy
    assert mnas_reward(1.0, 200.0, 100.0) == pytest.approx(2 ** -0.07) == pytest.approx(0.9526, abs=1e-4)
    assert mnas_reward(0.5, 80.0, 100.0, w=-0.15) == pytest.approx(0.5 * 0.8 ** -0.15)
    # hard: accuracy alone within the target, accuracy x T/LAT over it
    assert mnas_reward(0.75, 80.0, 100.0, hard=True) == 0.75
    assert mnas_reward(0.75, 100.0, 100.0, hard=True) == 0.75
    assert mnas_reward(0.75, 125.0, 100.0, hard=True) == pytest.approx(0.75 * 100.0 / 125.0)


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_mnas_search_maximizes_mnasnets_reward(tmp_path: Path, digits_dir: Path, hard: bool) -> None:
    target_ms = 3.6  # the baseline (3.65) is over it, the lightest genome (2.78) well within
    train = StubTrain()
    cfg = load_search_config(tiny_config(tmp_path, digits_dir, mode="mnas", trials=8, sampler="random",
                                         mnas={"target_ms": target_ms, "hard": hard},
                                         proxy={"config": str(ROOT / "configs" / "train" / "digits.yaml"),
                                                "overrides": {"epoch_size": 2}}))
    study = run_search(cfg, show_progress=False, train_fn=train, latency_fn=cost_latency)
    assert [d.name for d in study.directions] == ["MAXIMIZE"] and study.user_attrs["objectives"] == ["mnas_reward"]
    done = completed(study)
    pruned = [t for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,)) if not t.user_attrs.get("surplus")]
    assert len(done) + len(pruned) == 8  # a pruned trial counts toward the target
    latencies = [t.user_attrs["latency_ms"] for t in done]
    assert min(latencies) <= target_ms < max(latencies), latencies  # both sides of the target were scored
    for t in done:
        genome = parse_genome(t.user_attrs["genome"])
        assert t.user_attrs["latency_ms"] == pytest.approx(cost_latency(genome))
        accuracy = t.user_attrs["accuracy"]
        assert accuracy == pytest.approx(stub_top1(genome) / 100)
        assert t.value == pytest.approx(hand_reward(accuracy, t.user_attrs["latency_ms"], target_ms, hard))
        if "reused_from" not in t.user_attrs:
            # the pruner saw the reward after each epoch
            assert t.intermediate_values == pytest.approx({0: t.value, 1: t.value})
    # the median pruner stops poor trials once they report their second epoch (warm-up of one epoch)
    assert pruned and all(set(t.intermediate_values) == {0, 1} for t in pruned)
    assert all(t.user_attrs["pruned_at_epoch"] == 2 for t in pruned)
    assert all(t.number > 2 for t in pruned)  # never one of the first three, the pruner's start-up trials
    best = max(done, key=lambda t: t.value)
    assert study.best_trial.number == best.number


GA_KEYS = {"nsga2": "NSGAIISampler:generation", "nsga3": "NSGAIIISampler:generation"}


def test_gp_is_not_a_sampler(tmp_path: Path, digits_dir: Path) -> None:
    config = tiny_config(tmp_path, digits_dir, sampler="gp")
    assert_user_error(run_cli("run", "--config", str(config)),
                      f"{config}: sampler 'gp' - allowed: tpe, nsga2, nsga3, random")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sampler", ["nsga2", "nsga3"])
def test_samplers_complete_the_search_without_duplicate_work(tmp_path: Path, digits_dir: Path, sampler: str) -> None:
    trials = 12  # the GA samplers' population is 8: a bred generation follows the first
    train = StubTrain()
    cfg = load_search_config(tiny_config(tmp_path, digits_dir, sampler=sampler, trials=trials))
    study = run_search(cfg, show_progress=False, train_fn=train, latency_fn=cost_latency)
    done = completed(study)
    assert len(done) == trials
    keys = [t.user_attrs["genome_key"] for t in done]
    for t in done:
        genome = parse_genome(t.user_attrs["genome"])
        assert genome.key() == t.user_attrs["genome_key"] and TINY_SPACE.contains(genome)
        assert t.values == pytest.approx([stub_top1(genome) / 100, cost_latency(genome)])
        if "reused_from" in t.user_attrs:
            assert study.trials[t.user_attrs["reused_from"]].user_attrs["genome_key"] == t.user_attrs["genome_key"]
    assert {g.to_string() for g in train.genomes} == {t.user_attrs["proxy_genome"] for t in done}
    trained = [g.key() for g in train.genomes]
    assert len(trained) == len(set(trained)) == len(set(keys)) >= 4  # every distinct genome trained once
    # the genetic sampler ran: its first population of 8 was followed by a bred generation
    generations = {t.system_attrs.get(GA_KEYS[sampler]) for t in study.trials}
    assert {0, 1} <= generations, generations


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LUT of the tiny space built by ``search.py lut build`` (ONNX Runtime, CPU, 32 px, 2 calibration genomes)."""
    folder = tmp_path_factory.mktemp("lut")
    proc = run_cli("lut", "build", "--space", str(DATA / "tiny_space.yaml"), "--backend", "onnxruntime",
                   "--resolution", "32", "--warmup", "2", "--repeats", "10", "--calibrate", "2",
                   "--cache", str(folder / "cache.sqlite"), "--out", str(folder / "tiny_lut.csv"), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder / "tiny_lut.csv"


def lut_predict(lut: Path, genome: str) -> float:
    """``search.py lut predict --json``'s milliseconds for ``genome``."""
    proc = run_cli("lut", "predict", "--lut", str(lut), "--json", genome)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(json.loads(proc.stdout)["predicted_ms"])


def test_search_with_lut_latency_records_the_lut_prediction(tmp_path: Path, digits_dir: Path,
                                                            tiny_lut: Path) -> None:
    """The proxy has 5 classes and the space 10: the LUT times the deployed genome (the space's classes)."""
    train = StubTrain()
    config = tiny_config(tmp_path, digits_dir, trials=5, sampler="random",
                         data={"dataset": "imagefolder", "data_dir": str(digits_dir), "images_per_class": 12,
                               "holdout": 0.25, "classes": 5},
                         latency={"source": "lut", "lut": str(tiny_lut), "backend": "onnxruntime", "device": "CPU",
                                  "resolution": 32})
    study = run_search(load_search_config(config), show_progress=False, train_fn=train)
    done = completed(study)
    assert len(done) == 5 and len({t.user_attrs["genome_key"] for t in done}) >= 2
    predicted = {g: lut_predict(tiny_lut, g) for g in {t.user_attrs["genome"] for t in done}}
    for t in done:
        genome = parse_genome(t.user_attrs["genome"])
        assert genome.num_classes == TINY_SPACE.skeleton.num_classes == 10 and TINY_SPACE.contains(genome)
        assert t.user_attrs["latency_ms"] == pytest.approx(predicted[t.user_attrs["genome"]], rel=1e-3)
        assert t.values[1] == t.user_attrs["latency_ms"]
    assert parse_genome(study.trials[0].user_attrs["genome"]) == TINY_SPACE.skeleton
    # training saw the proxy's 5 classes
    assert train.genomes and all(g.num_classes == 5 for g in train.genomes)


def test_lut_of_another_space_stops_the_search_before_any_work(tmp_path: Path, tiny_lut: Path) -> None:
    out = tmp_path / "out"
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({
        "space": "configs/space/mixnet_s.yaml", "out": str(out), "trials": 2,
        "data": {"data_dir": str(tmp_path / "digits")},
        "latency": {"source": "lut", "lut": str(tiny_lut), "backend": "onnxruntime", "resolution": 32}}))
    proc = run_cli("run", "--config", str(config))
    assert_user_error(proc, "latency.lut", "built for space")
    assert not out.exists() and not (tmp_path / "digits").exists()


def test_shipped_search_configs_load_and_validate() -> None:
    from trainer.config import load_config

    demo = load_search_config(ROOT / "configs" / "search" / "demo.yaml")
    imagenet = load_search_config(ROOT / "configs" / "search" / "imagenet.yaml")
    for cfg, expansions in ((demo, 3), (imagenet, 2)):
        space = SearchSpace.from_yaml(ROOT / cfg.space)
        assert space.skeleton == preset("mixnet_s") and space.cardinality == 5 ** 16 * expansions ** 15
        assert space.contains(preset("mixnet_s"))
        assert cfg.goal.name == "pareto" and cfg.goal.stored_names == ["accuracy", "latency_ms"]
        assert cfg.goal.directions == ["maximize", "minimize"] and cfg.latency.target.resolution == 224
        assert cfg.latency.source == "measured" and cfg.latency.target.batch == 1
    assert (demo.sampler, demo.trials, demo.workers, demo.storage.study, str(demo.out_dir)) == \
        ("tpe", 8, 2, "mixnet-demo", "runs/demo")
    assert (demo.data.dataset, demo.data.holdout, demo.proxy.seeds) == ("animals", 0.3, 1)
    assert (demo.latency.target.backend, demo.latency.target.device) == ("onnxruntime", "CPU")
    proxy = load_config(ROOT / demo.proxy.config, demo.proxy.overrides)
    assert (proxy.width, proxy.epoch_size, proxy.image_resize, proxy.batch_size, proxy.lr) == (0.5, 3, 28, 64, 0.01)
    assert (proxy.warmup_epochs, proxy.scale, proxy.mixconv_impl, proxy.opt) == (1, [1.0, 1.0], "auto", "adamw")
    reference = reference_train_config(demo)
    assert (reference.epoch_size, reference.lr, reference.width) == (6, 0.01, 0.5)

    assert (imagenet.sampler, imagenet.trials, imagenet.workers, imagenet.devices, imagenet.storage.study) == \
        ("nsga2", 200, 8, "all", "mixnet-imagenet")
    assert (imagenet.data.dataset, imagenet.data.data_dir, imagenet.data.classes, imagenet.data.images_per_class,
            imagenet.data.holdout) == ("imagefolder", "/path/to/imagenet", 100, 500, 0.1)
    assert (imagenet.latency.target.backend, imagenet.latency.target.device, imagenet.latency.target.device_id) == \
        ("mindspore", "Ascend", 0)
    assert (imagenet.latency.protocol.warmup, imagenet.latency.protocol.repeats) == (20, 100)
    proxy = load_config(ROOT / imagenet.proxy.config, imagenet.proxy.overrides)
    assert (proxy.distribute, proxy.epoch_size, proxy.warmup_epochs, proxy.decay_epochs) == (False, 5, 1, 4)
    assert (proxy.image_resize, proxy.batch_size, proxy.lr, proxy.auto_augment) == (128, 128, 0.05, None)
    assert (proxy.re_prob, proxy.mixup, proxy.cutmix, proxy.model) == (0.0, 0.0, 0.0, "mixnet_s")
    # everything else is MindCV's MixNet-S recipe
    recipe = load_config(ROOT / "configs" / "train" / "mixnet_s.yaml").to_dict()
    overridden = set(imagenet.proxy.overrides)
    assert {k: v for k, v in proxy.to_dict().items() if k not in overridden and recipe[k] != v} == {}


def test_search_reads_imported_mindir_results_from_its_cache(tmp_path: Path, digits_dir: Path) -> None:
    """``mindir export``, ``measure`` (here with --device CPU), ``import``: the search times nothing."""
    skeleton = TINY_SPACE.skeleton.to_string()
    steps = [("mindir", "export", skeleton, "--resolution", "32", "--out", str(tmp_path / "m"), "--no-progress"),
             ("mindir", "measure", str(tmp_path / "m"), "--device", "CPU", "--warmup", "2", "--repeats", "10",
              "--min-span", "0", "--out", str(tmp_path / "r.csv"), "--no-progress"),
             ("mindir", "import", str(tmp_path / "r.csv"), "--cache", str(tmp_path / "cache.sqlite"),
              "--warmup", "2", "--repeats", "10")]
    for args in steps:
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {row["genome_key"]: row["median_ms"] for row in LatencyCache(tmp_path / "cache.sqlite")}
    config = tiny_config(tmp_path, digits_dir, trials=1,
                         latency={"backend": "mindir", "device": "CPU", "resolution": 32, "warmup": 2,
                                  "repeats": 10, "cache": str(tmp_path / "cache.sqlite")})
    study = run_search(load_search_config(config), show_progress=False, train_fn=StubTrain())
    (trial,) = completed(study)
    assert trial.user_attrs["latency_ms"] == imported[TINY_SPACE.skeleton.key()]
    assert len(LatencyCache(tmp_path / "cache.sqlite")) == 1
