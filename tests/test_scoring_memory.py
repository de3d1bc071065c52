"""Supernet scores read their images from disk a batch at a time, or once and keep them when they are
few: the same images as the trainer's MindSpore pipelines make, the same scores as the stand-alone
networks on those images held in memory, kept or streamed, and memory that does not grow with the
number of held-out images when streamed. The proxy split those images come
from links each image by its real path and copies none."""

from __future__ import annotations

import dataclasses
import os
import tracemalloc
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mixnet.supernet import extract
from search.config import load_search_config
from search.proxy_data import MANIFEST, plan_proxy_data, prepare_proxy_data
from search.recipes import on_proxy_data
from search.sections import DataSection
from search.supernet.scoring import (SupernetScorer, calibration_batches, holdout_batches, scoring_images,
                                     supernet_of)
from search.supernet.training import supernet_recipe
from space.search_space import SearchSpace
from test_search import DATA, digits_dir, tiny_config  # noqa: F401 - fixture
from trainer.data import TrainData, eval_batches, scan_split
from trainer.transforms import SkipCounter

TINY = SearchSpace.from_yaml(DATA / "tiny_space.yaml")
CALIBRATION, SCORED, BATCH = 3, 25, 8   # 25 of the 60 held-out images, in batches of 8, 8, 8 and 1 (padded)
# every random choice of the training pipeline on: crops, flips, color jitter, random erasing, mixup and cutmix
AUGMENTED = {"batch_size": 8, "num_parallel_workers": 2, "hflip": 0.5, "color_jitter": 0.4, "re_prob": 0.5,
             "mixup": 0.4, "cutmix": 1.0, "cutmix_prob": 0.8}


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> tuple[Any, Any, Any]:  # noqa: F811
    """The supernet recipe of a tiny search on digits (augmenting and mixing) on its proxy split, the
    search config and the proxy split."""
    folder = tmp_path_factory.mktemp("scoring")
    cfg = load_search_config(tiny_config(folder, digits_dir, supernet={"overrides": AUGMENTED}))
    proxy = prepare_proxy_data(cfg.data, cfg.out_dir, plan_proxy_data(cfg.data))
    return on_proxy_data(supernet_recipe(cfg), proxy), cfg, proxy


def in_memory_holdout(recipe: Any) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images the in-memory scorer chose: all of them through the trainer's evaluation
    pipeline, then ``SCORED`` drawn at random with the recipe's seed, in order."""
    holdout = scan_split(recipe.data_dir, recipe.val_split, "val_split")
    pairs = list(eval_batches(recipe, holdout, 0, 1, SkipCounter()))
    images, labels = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    chosen = np.sort(np.random.default_rng(int(recipe.seed)).permutation(len(labels))[:SCORED])
    return images[chosen], labels[chosen]


@contextmanager
def dangling(links: list[Path]) -> Iterator[None]:
    """The symbolic links ``links`` pointing at no file for the ``with`` block: opening one raises."""
    targets = [os.readlink(link) for link in links]
    for link in links:
        link.unlink()
        link.symlink_to(link.parent / "missing.jpg")
    try:
        yield
    finally:
        for link, target in zip(links, targets):
            link.unlink()
            link.symlink_to(target)


def test_streamed_images_are_the_trainer_pipelines_and_scores_those_of_networks_in_memory(tiny_search: tuple) -> None:
    recipe, cfg, proxy = tiny_search
    images = scoring_images(recipe, CALIBRATION, SCORED, BATCH)
    train = scan_split(recipe.data_dir, recipe.train_split, "train_split")
    piped = [b for b, _ in islice(TrainData(recipe, train, recipe.num_classes, 0, 1).batches(0, SkipCounter()),
                                  CALIBRATION)]
    streamed = list(calibration_batches(images))
    assert [b.shape for b in streamed] == [(8, 3, 32, 32)] * CALIBRATION
    assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(streamed, piped))

    held, labels = in_memory_holdout(recipe)
    batches = list(holdout_batches(images))
    assert [len(b) for b, _ in batches] == [8, 8, 8, 1]
    assert np.concatenate([b for b, _ in batches]).tobytes() == held.tobytes()
    assert np.array_equal(np.concatenate([lab for _, lab in batches]), labels)

    unread = [p for p in Path(recipe.data_dir, recipe.val_split).glob("*/*") if str(p) not in images.holdout]
    assert len(unread) == 60 - SCORED
    with dangling(unread):   # the held-out images not chosen are never opened
        assert [b.tobytes() for b, _ in holdout_batches(images)] == [b.tobytes() for b, _ in batches]

    ms.set_seed(3)   # random weights whose predictions differ between images
    net = supernet_of(TINY, recipe, proxy, cfg.supernet)
    scorer = SupernetScorer(net, images)    # these few images are decoded once and kept
    assert images.decoded_bytes() == (CALIBRATION * 8 + SCORED) * 3 * 32 * 32 * 4 <= scorer.keep_bytes
    streaming = SupernetScorer(net, images, keep_bytes=0)
    for genome in (TINY.skeleton, TINY.decode({d.name: d.choices[-1] for d in TINY.dimensions})):
        top1 = scorer.score(genome)
        assert scorer.kept is not None and streaming.score(genome) == top1 and streaming.kept is None
        standalone = extract(net, genome)    # with the BatchNorm statistics recalibrated for this genome
        standalone.set_train(False)
        predicted = standalone(Tensor(held)).asnumpy().argmax(axis=1)
        assert len(np.unique(predicted)) >= 3
        assert scorer.scored == SCORED and top1 == (predicted == labels).sum() / SCORED
        scorer.images = dataclasses.replace(images, labels=predicted)   # each image scores as predicted in memory
        assert scorer.score(genome) == 1.0
        scorer.images = images


def test_scoring_memory_does_not_grow_with_the_held_out_images(tiny_search: tuple) -> None:
    recipe, cfg, proxy = tiny_search
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = supernet_of(TINY, recipe, proxy, cfg.supernet)
    peaks = {}
    for count in (4, 60):   # one batch of 4 held-out images, then all 60 (15 batches)
        scorer = SupernetScorer(net, scoring_images(recipe, 1, count, 4), keep_bytes=0)   # streamed
        scorer.score(TINY.skeleton)
        tracemalloc.start()
        scorer.score(TINY.skeleton)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert scorer.scored == count
    held_in_memory = 56 * 3 * 32 * 32 * 4   # the bytes 56 more images take in memory
    assert peaks[60] - peaks[4] < held_in_memory / 8, peaks


def test_the_proxy_split_links_each_image_by_its_real_path_and_copies_none(tmp_path: Path) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere" / "c3"
    for folder, count in ((data / "train" / "c0", 10), (data / "train" / "c1", 7), (elsewhere, 5)):
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"{i}.jpg").write_bytes(f"{folder.name} {i}".encode())
    (elsewhere / "notes.txt").write_text("not an image")
    (data / "train" / "c3").symlink_to(elsewhere)          # a class folder elsewhere
    (tmp_path / "link").symlink_to(data)                    # the dataset reached through a link
    section = DataSection(dataset="imagefolder", data_dir=str(tmp_path / "link"), size=32, classes=None,
                          images_per_class=None, holdout=0.3, seed=0)
    plan = plan_proxy_data(section)
    for name, count in (("c0", 10), ("c1", 7), ("c3", 5)):
        real = sorted(os.path.realpath(p) for p in (tmp_path / "link" / "train" / name).glob("*.jpg"))
        train, held = plan["train"][name], plan["holdout"][name]
        assert sorted(train + held) == real and len(held) == round(0.3 * count) and not set(train) & set(held)
    proxy = prepare_proxy_data(section, tmp_path / "out", plan)
    linked = sorted(p for p in proxy.root.rglob("*") if not p.is_dir() and p.name != MANIFEST)
    assert len(linked) == 22 and all(p.is_symlink() for p in linked)
    for p in linked:
        assert os.readlink(p) == plan[p.parent.parent.name][p.parent.name][int(p.stem)]
