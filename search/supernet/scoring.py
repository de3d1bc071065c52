"""Scoring genomes with a trained supernet: BatchNorm recalibrated on a few training batches, then
top-1 on the held-out images, nothing compiled after the first genome. Images that take no more than
``KEEP_BYTES`` decoded are read once and kept; more are read from disk for every genome, a batch at a
time, so memory does not grow with the number of held-out images."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

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
from trainer.data import Split, TrainData, split_files
from trainer.mixing import BatchMixer, mixing_enabled
from trainer.transforms import EvalTransform, SkipCounter, TrainTransform

from ..config import SearchConfig
from ..proxy_data import ProxyData
from ..recipes import on_proxy_data
from ..sections import SupernetSection

SPACE_FILE = "space.json"
BEST = "best.ckpt"


# What a supernet folder that does not record a sharing key was trained with.
UNRECORDED_SHARING = {"expansion_one": "shared", "kernel_transform": False}
KEEP_BYTES = 256 * 2 ** 20   # decoded scoring images up to this size are kept between genomes


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
    """Where a score's images come from, read from disk a batch at a time (no more than two batches in
    memory): the training files of the calibration batches in their order, and the held-out
    files with their labels, scored ``batch`` at a time; ``recipe`` says how they are read (transforms,
    mixing, batch size, reading threads)."""

    recipe: Any
    calibration: tuple[str, ...]
    calibration_labels: np.ndarray
    holdout: tuple[str, ...]
    labels: np.ndarray
    batch: int

    def decoded_bytes(self) -> int:
        """The memory all its images take decoded (3 channels of float32 at the recipe's resolution)."""
        return (len(self.calibration) + len(self.holdout)) * 3 * int(self.recipe.image_resize) ** 2 * 4


def scoring_images(recipe: Any, calibration_batches: int, count: "int | None" = None,
                   batch: "int | None" = None) -> ScoringImages:
    """The first ``calibration_batches`` batches of a shuffled training epoch (training transforms) and the
    held-out images: all, or ``count`` of them drawn at random once (the same for every genome, so scores
    stay paired), scored ``batch`` at a time (the recipe's batch size unless given). Only the files are
    listed here; an unreadable file is left out of its batch when read."""
    train, train_files = split_files(recipe.data_dir, recipe.train_split, "train_split")
    epoch = TrainData(recipe, train, recipe.num_classes, 0, 1)
    first = epoch.indices(0)[:min(calibration_batches, epoch.steps) * recipe.batch_size]
    holdout, holdout_files = split_files(recipe.data_dir, recipe.val_split, "val_split")
    chosen = np.arange(holdout.size)
    if count is not None and count < holdout.size:
        chosen = np.sort(np.random.default_rng(int(recipe.seed)).permutation(holdout.size)[:count])
    return ScoringImages(recipe, tuple(train_files[i] for i in first), _labels(train)[first],
                         tuple(holdout_files[i] for i in chosen), _labels(holdout)[chosen],
                         int(batch or recipe.batch_size))


def _labels(split: Split) -> np.ndarray:
    """The label of each image of ``split``, in its files' order."""
    return np.repeat(np.arange(len(split.classes), dtype=np.int64), split.counts)


def _read(paths: Sequence[str], transform: Callable[[np.ndarray], Any], step: int, threads: int
          ) -> Iterator[list[Any]]:
    """``transform`` of each file's bytes, ``step`` files at a time in order; the next ``step`` files are
    read (by ``threads`` threads) while the caller uses the last."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        ahead: list[Future] = []
        for start in range(0, len(paths), step):
            reading = [pool.submit(lambda p: transform(np.fromfile(p, np.uint8)), p)
                       for p in paths[start:start + step]]
            if ahead:
                yield [f.result() for f in ahead]
            ahead = reading
        if ahead:
            yield [f.result() for f in ahead]


def calibration_batches(images: ScoringImages) -> Iterator[np.ndarray]:
    """The calibration batches of ``images`` as the training pipeline makes them (epoch 0's transforms,
    then mixup/cutmix when the recipe mixes), read from disk."""
    recipe = images.recipe
    transform = TrainTransform(recipe, 0, SkipCounter())
    mixer = BatchMixer(recipe, 0, recipe.num_classes) if mixing_enabled(recipe) else None
    size = recipe.batch_size
    for start, pairs in zip(range(0, len(images.calibration), size),
                            _read(images.calibration, transform, size, recipe.num_parallel_workers)):
        kept = [i for i, (image, _) in enumerate(pairs) if image.size]
        if not kept:
            continue
        batch = np.stack([pairs[i][0] for i in kept])
        if mixer is not None:
            keys = np.array([pairs[i][1] for i in kept], np.uint32)
            batch = mixer(batch, images.calibration_labels[start:start + size][kept], keys)[0]
        yield batch


def holdout_batches(images: ScoringImages) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The held-out images of ``images`` (evaluation transforms) and their labels, ``images.batch`` at a
    time, read from disk; a batch loses its unreadable files."""
    recipe = images.recipe
    transform = EvalTransform(recipe, SkipCounter())
    for start, arrays in zip(range(0, len(images.holdout), images.batch),
                             _read(images.holdout, transform, images.batch, recipe.num_parallel_workers)):
        kept = [i for i, image in enumerate(arrays) if image.size]
        if kept:
            yield np.stack([arrays[i] for i in kept]), images.labels[start:start + images.batch][kept]


class SupernetScorer:
    """Held-out top-1 of genomes with a supernet's weights (BatchNorm recalibrated per genome); ``scored``
    is the number of held-out images the last score counted (0 before the first). Images that take at most
    ``keep_bytes`` decoded are read once and kept for every later genome; more stream from disk."""

    def __init__(self, net: Supernet, images: ScoringImages, keep_bytes: int = KEEP_BYTES) -> None:
        self.net, self.images, self.scored = net, images, 0
        self.keep_bytes = keep_bytes
        self.kept: "tuple[ScoringImages, list, list] | None" = None   # the images, their batches decoded
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
        n = 0
        for images in self.batches()[0]:
            self.calibrating(Tensor(images))
            n += 1
            for total, (a, _) in zip(sums, self.norms):
                total[0] += a.moving_mean.asnumpy()
                total[1] += a.moving_variance.asnumpy()
        if n == 0:
            raise UsageError(f"no readable calibration images in '{Path(self.images.calibration[0]).parents[1]}'")
        for (mean, var), (_, b) in zip(sums, self.norms):
            b.moving_mean.set_data(Tensor((mean / n).astype(np.float32)))
            b.moving_variance.set_data(Tensor((var / n).astype(np.float32)))

    def batches(self) -> "tuple[Iterable[np.ndarray], Iterable[tuple[np.ndarray, np.ndarray]]]":
        """The calibration batches and the held-out batches with their labels: decoded once and kept when
        ``images`` fit in ``keep_bytes``, else read from disk again."""
        if self.images.decoded_bytes() > self.keep_bytes:
            return calibration_batches(self.images), holdout_batches(self.images)
        if self.kept is None or self.kept[0] is not self.images:
            self.kept = (self.images, list(calibration_batches(self.images)), list(holdout_batches(self.images)))
        return self.kept[1], self.kept[2]

    def score(self, genome: Genome) -> float:
        """Held-out top-1 of ``genome`` as a fraction (after recalibrating BatchNorm for it)."""
        self.recalibrate(genome)
        net, size = self.net, self.images.batch
        net.set_train(False)
        net.select(genome)
        hits = scored = 0
        for images, labels in self.batches()[1]:
            count = len(images)
            if count < size:
                images = np.concatenate([images, np.zeros((size - count,) + images.shape[1:], images.dtype)])
            logits = net(Tensor(images)).asnumpy()[:count]
            hits += int((logits.argmax(axis=1) == labels).sum())
            scored += count
        if scored == 0:
            raise UsageError(f"none of the {len(self.images.holdout)} held-out images in "
                             f"'{Path(self.images.holdout[0]).parents[1]}' is readable")
        self.scored = scored
        return hits / scored


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
        n = self.scorer.scored
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
