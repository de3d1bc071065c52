"""Scoring genomes with a trained supernet: BatchNorm recalibrated on a few training batches, then
top-1 on the held-out images, with every image in memory and nothing compiled after the first genome."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from mixnet.checkpoint import load_weights
from mixnet.supernet import Supernet
from space.basics.atomic import write_atomic
from space.basics.errors import UsageError
from space.genome import Genome
from space.search_space import SearchSpace
from trainer.checkpointing import TRAINING_STATE_PREFIXES
from trainer.data import TrainData, eval_batches, scan_split
from trainer.transforms import SkipCounter

from ..config import SearchConfig
from ..proxy_data import ProxyData
from ..recipes import on_proxy_data
from ..sections import SupernetSection

SPACE_FILE = "space.json"
BEST = "best.ckpt"


# What a supernet folder that does not record a sharing key was trained with.
UNRECORDED_SHARING = {"expansion_one": "shared", "kernel_transform": False}


def write_space(space: SearchSpace, folder: Path, section: SupernetSection) -> None:
    """Record in a supernet's folder which space it holds (name, menus, fingerprint) and which weights
    (``section.sharing``)."""
    from ..latency.lut import space_document
    write_atomic(folder / SPACE_FILE, json.dumps({**space_document(space), **section.sharing}, indent=1))


def check_space(space: SearchSpace, folder: Path, section: SupernetSection) -> None:
    """Raise UsageError unless the supernet in ``folder`` was trained for ``space``, holding the weights
    ``section.sharing`` says (``UNRECORDED_SHARING`` for a key the folder does not record)."""
    from ..latency.lut import space_document
    path = folder / SPACE_FILE
    if not path.is_file():
        raise UsageError(f"no trained supernet in '{folder}' ({SPACE_FILE} missing) - run 'search.py supernet train'")
    held, wanted = json.loads(path.read_text()), space_document(space)
    if held.get("fingerprint") != wanted["fingerprint"]:
        raise UsageError(f"the supernet in '{folder}' was trained for space '{held.get('name')}' (fingerprint "
                         f"{held.get('fingerprint')}), not for '{wanted['name']}' ({wanted['fingerprint']})")
    for key, wanted in section.sharing.items():
        trained = held.get(key, UNRECORDED_SHARING[key])
        if trained != wanted:
            said = yaml_text(trained)
            raise UsageError(f"the supernet in '{folder}' was trained with {key} '{said}', the config says "
                             f"'{yaml_text(wanted)}' - set supernet.{key}: {said} or train a new supernet")


def yaml_text(value: Any) -> str:
    """``value`` as a config would spell it (true/false for booleans)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def supernet_of(space: SearchSpace, recipe: Any, proxy: ProxyData, section: SupernetSection) -> Supernet:
    """A supernet of ``space`` for the networks ``recipe`` trains on ``proxy`` (its width, classes and
    MixConv implementation), holding the weights ``section`` says."""
    width = recipe.width if recipe.width else space.skeleton.width
    return Supernet(section.spec_of(space, width, proxy.num_classes), impl=recipe.mixconv_impl)


def load_supernet(cfg: SearchConfig, ckpt: "Path | None" = None, proxy: "ProxyData | None" = None,
                  recipe: Any = None) -> Supernet:
    """The trained supernet of ``cfg`` (``supernet.dir/best.ckpt`` unless ``ckpt``), checked for its space;
    ``proxy`` and ``recipe`` (the proxy split and the supernet recipe) are read from ``cfg`` unless given."""
    from ..proxy_data import plan_proxy_data, proxy_data_of
    from .training import supernet_recipe
    space = SearchSpace.from_yaml(cfg.space)
    check_space(space, cfg.supernet.dir, cfg.supernet)
    proxy = proxy or proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir)
    net = supernet_of(space, recipe or supernet_recipe(cfg), proxy, cfg.supernet)
    load_weights(net, ckpt or cfg.supernet.dir / BEST, ignore_prefixes=TRAINING_STATE_PREFIXES)
    return net


@dataclass(frozen=True)
class ScoringImages:
    """The images a score needs, in memory: calibration batches from the training split and the held-out split."""

    calibration: tuple[np.ndarray, ...]
    images: np.ndarray
    labels: np.ndarray
    batch: int


def scoring_images(recipe: Any, calibration_batches: int, count: "int | None" = None,
                   batch: "int | None" = None) -> ScoringImages:
    """``calibration_batches`` shuffled training batches (training transforms) and the held-out images: all,
    or ``count`` of them drawn at random once (the same for every genome, so scores stay paired), scored
    ``batch`` at a time (the recipe's batch size unless given)."""
    train = scan_split(recipe.data_dir, recipe.train_split, "train_split")
    holdout = scan_split(recipe.data_dir, recipe.val_split, "val_split")
    data = TrainData(recipe, train, recipe.num_classes, 0, 1)
    calibration = []
    for images, _ in data.batches(0, SkipCounter()):
        calibration.append(images)
        if len(calibration) == calibration_batches:
            break
    pairs = list(eval_batches(recipe, holdout, 0, 1, SkipCounter()))
    images, labels = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]).astype(np.int64)
    if count is not None and count < len(labels):
        chosen = np.sort(np.random.default_rng(int(recipe.seed)).permutation(len(labels))[:count])
        images, labels = images[chosen], labels[chosen]
    return ScoringImages(tuple(calibration), images, labels, int(batch or recipe.batch_size))


class SupernetScorer:
    """Held-out top-1 of genomes with a supernet's weights (BatchNorm recalibrated per genome)."""

    def __init__(self, net: Supernet, images: ScoringImages) -> None:
        self.net, self.images = net, images
        self.calibrating = Supernet(net.spec, bn_momentum=0.0, impl=net.impl)  # moving statistics = the last batch's
        weights = {p.name: p for p in net.get_parameters()}
        for p in self.calibrating.get_parameters():
            p.set_data(Tensor(weights[p.name].asnumpy()))
        self.norms = [(a, b) for (_, a), (_, b) in zip(_norms(self.calibrating), _norms(net))]

    def recalibrate(self, genome: Genome) -> None:
        """Set the supernet's BatchNorm statistics to the mean over the calibration batches for ``genome``."""
        self.calibrating.set_train(True)
        self.calibrating.select(genome)
        sums = [[np.zeros(a.moving_mean.shape), np.zeros(a.moving_mean.shape)] for a, _ in self.norms]
        for images in self.images.calibration:
            self.calibrating(Tensor(images))
            for total, (a, _) in zip(sums, self.norms):
                total[0] += a.moving_mean.asnumpy()
                total[1] += a.moving_variance.asnumpy()
        n = len(self.images.calibration)
        for (mean, var), (_, b) in zip(sums, self.norms):
            b.moving_mean.set_data(Tensor((mean / n).astype(np.float32)))
            b.moving_variance.set_data(Tensor((var / n).astype(np.float32)))

    def score(self, genome: Genome) -> float:
        """Held-out top-1 of ``genome`` as a fraction (after recalibrating BatchNorm for it)."""
        self.recalibrate(genome)
        net, data = self.net, self.images
        net.set_train(False)
        net.select(genome)
        hits = 0
        for start in range(0, len(data.labels), data.batch):
            images = data.images[start:start + data.batch]
            count = len(images)
            if count < data.batch:
                images = np.concatenate([images, np.zeros((data.batch - count,) + images.shape[1:], images.dtype)])
            logits = net(Tensor(images)).asnumpy()[:count]
            hits += int((logits.argmax(axis=1) == data.labels[start:start + count]).sum())
        return hits / len(data.labels)


def _norms(net: nn.Cell) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BatchNorm cells of ``net`` by name, in order."""
    return [(name, cell) for name, cell in net.cells_and_names() if isinstance(cell, nn.BatchNorm2d)]


def scorer_for(cfg: SearchConfig, proxy: ProxyData, recipe: Any) -> SupernetScorer:
    """The scorer of ``cfg``'s trained supernet on the proxy split ``proxy`` (``recipe``: the supernet recipe)."""
    ms.set_context(mode=ms.GRAPH_MODE)
    net = load_supernet(cfg, proxy=proxy, recipe=recipe)
    section = cfg.supernet
    return SupernetScorer(net, scoring_images(on_proxy_data(recipe, proxy), section.calibration_batches,
                                              section.score_images, section.score_batch))


class SupernetAccuracy:
    """A search's accuracy source scoring each trial's genome with the supernet's weights; ``noise`` is the
    stated noise of one supernet's score (a fraction; None when not stated: then errors are binomial only)."""

    def __init__(self, scorer: SupernetScorer, noise: "float | None" = None) -> None:
        self.scorer, self.noise = scorer, noise

    def __call__(self, trial: Any, genome: Genome, ev: Any) -> float:
        """Held-out top-1 of the deployed ``genome``'s supernet sub-network, stored with its standard error
        (binomial, and the supernet's stated noise)."""
        from ..fidelity import accuracy_se, binomial_se
        from ..record import store
        store(trial, stage="scoring")
        started = time.perf_counter()
        top1 = self.scorer.score(genome)
        n = len(self.scorer.images.labels)
        store(trial, accuracy_source="supernet", holdout_images=n, noise_sd=self.noise,
              accuracy_se=round(accuracy_se([top1], n, self.noise), 6),
              accuracy_se_binomial=round(binomial_se(top1, n), 6),
              train_seconds=0.0, score_seconds=round(time.perf_counter() - started, 3))
        return top1


def check_trained(cfg: SearchConfig, space: SearchSpace) -> None:
    """Raise UsageError, before any work, unless ``cfg``'s supernet was trained for ``space`` (and saved)."""
    try:
        check_space(space, cfg.supernet.dir, cfg.supernet)
        if not (cfg.supernet.dir / BEST).is_file():
            raise UsageError(f"the supernet in '{cfg.supernet.dir}' has no {BEST} yet - finish 'search.py "
                             "supernet train'")
    except UsageError as exc:
        raise UsageError(f"{cfg.source}: accuracy.source 'supernet': {exc}") from None
