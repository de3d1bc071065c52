"""Training data: the digits tree, ImageFolder checks, shards, determinism, corrupt images, mixing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, assert_user_error, run_cli
from space.basics.errors import UsageError
from trainer.augment import OPS, Policy, RandAugment, parse_policy
from trainer.config import load_config
from trainer.data import TrainData, check_same_classes, eval_batches, scan_split
from trainer.bundled import write_digits
from trainer.mixing import BatchMixer
from trainer.transforms import SkipCounter


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits tree at 32 px."""
    return write_digits(tmp_path_factory.mktemp("data") / "digits", size=32)


def small_tree(root: Path, per_class: int = 6, classes: int = 3, size: int = 20) -> Path:
    """An ImageFolder tree of random PNGs (train and val)."""
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def cfg_for(root: Path, **overrides: object):
    """The digits recipe pointed at ``root``."""
    return load_config(ROOT / "configs" / "train" / "digits.yaml", dict({"data_dir": str(root), "num_parallel_workers": 2},
                                                         **overrides))


def test_digits_tree(digits: Path) -> None:
    manifest = json.loads((digits / "digits.json").read_text())
    assert (manifest["train"], manifest["val"], manifest["size"]) == (1437, 360, 32)
    train, val = scan_split(str(digits), "train", "train_split"), scan_split(str(digits), "val", "val_split")
    assert train.classes == tuple(str(d) for d in range(10)) == val.classes
    assert (train.size, val.size) == (1437, 360)
    assert min(val.counts) >= 35
    with Image.open(next((digits / "val" / "3").iterdir())) as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    names = {p.name for p in (digits / "train").rglob("*.png")} | {p.name for p in (digits / "val").rglob("*.png")}
    assert len(names) == 1797
    assert write_digits(digits, size=32) == digits
    assert not [p for p in digits.parent.iterdir() if p.name.startswith(".")]


def test_digits_refuses_a_foreign_folder(tmp_path: Path, digits: Path) -> None:
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not a digits tree"):
        write_digits(tmp_path)
    with pytest.raises(UsageError, match="not a digits tree of size 16"):
        write_digits(digits, size=16)
    with pytest.raises(UsageError, match="--size 4"):
        write_digits(tmp_path / "new", size=4)


def test_digits_cli(tmp_path: Path) -> None:
    proc = run_cli("data", "digits", "--out", str(tmp_path / "d"), "--size", "16")
    assert proc.returncode == 0, proc.stderr
    assert "1437 train + 360 val images" in proc.stdout
    assert_user_error(run_cli("data", "digits", "--out", str(tmp_path / "e"), "--size", "2"), "--size 2")


def test_animals_tree_has_no_image_twice(tmp_path: Path) -> None:
    """animal-mnist's 10,000 images hold 284 exact duplicates: 9,716 distinct ones are written, none in
    both splits, stratified 80/20 over the 10 animals, read from the installed package."""
    import numpy as np
    proc = run_cli("data", "animals", "--out", str(tmp_path / "a"), "--size", "28")
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "a"
    manifest = json.loads((root / "animals.json").read_text())
    assert (manifest["train"], manifest["val"], manifest["classes"]) == (7772, 1944, 10)
    train, val = scan_split(str(root), "train", "train_split"), scan_split(str(root), "val", "val_split")
    assert "zebra" in train.classes and train.classes == val.classes and len(train.classes) == 10
    digests = {}
    for split in ("train", "val"):
        for path in (root / split).rglob("*.png"):
            with Image.open(path) as img:
                digests.setdefault(np.asarray(img.convert("L")).tobytes(), set()).add(split)
    assert len(digests) == 9716 and all(len(splits) == 1 for splits in digests.values())


def test_mnist5k_tree(tmp_path: Path) -> None:
    proc = run_cli("data", "mnist5k", "--out", str(tmp_path / "m"), "--size", "28")
    assert proc.returncode == 0, proc.stderr
    assert "4000 train + 1000 val images, 10 classes, 28x28 px" in proc.stdout
    val = scan_split(str(tmp_path / "m"), "val", "val_split")
    assert val.classes == tuple(str(d) for d in range(10)) and min(val.counts) >= 90


def test_split_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="data_dir is not set"):
        scan_split("", "train", "train_split")
    with pytest.raises(UsageError, match="data_dir '.*nowhere' not found"):
        scan_split(str(tmp_path / "nowhere"), "train", "train_split")
    (tmp_path / "train").mkdir()
    with pytest.raises(UsageError, match="val_split folder '.*val' not found - data_dir holds: train"):
        scan_split(str(tmp_path), "val", "val_split")
    with pytest.raises(UsageError, match="train_split '.*train' has no class folders"):
        scan_split(str(tmp_path), "train", "train_split")
    (tmp_path / "train" / "cat").mkdir()
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(UsageError, match="class folder '.*cat' holds no images"):
        scan_split(str(tmp_path), "train", "train_split")


def test_val_classes_must_match(tmp_path: Path) -> None:
    root = small_tree(tmp_path)
    (root / "val" / "class2").rename(root / "val" / "other")
    with pytest.raises(UsageError, match="missing class2; extra other"):
        check_same_classes(scan_split(str(root), "train", "t"), scan_split(str(root), "val", "v"))


def test_batch_larger_than_dataset(tmp_path: Path) -> None:
    root = small_tree(tmp_path)
    cfg = cfg_for(root, batch_size=64)
    with pytest.raises(UsageError, match="batch_size 64 is larger than the 18 training images"):
        TrainData(cfg, scan_split(str(root), "train", "train_split"), 3, 0, 1)
    cfg = cfg_for(root, batch_size=10)
    with pytest.raises(UsageError, match=r"larger than the 9 training images per rank \(2 ranks\)"):
        TrainData(cfg, scan_split(str(root), "train", "train_split"), 3, 0, 2)


def test_shards_are_disjoint_and_epochs_reshuffle(digits: Path) -> None:
    cfg = cfg_for(digits)
    split = scan_split(str(digits), "train", "train_split")
    ranks = [TrainData(cfg, split, 10, r, 2) for r in range(2)]
    a, b = ranks[0].indices(0), ranks[1].indices(0)
    assert len(a) == len(b) == 1437 // 2 and not set(a) & set(b)
    assert not np.array_equal(a, ranks[0].indices(1))
    assert np.array_equal(a, TrainData(cfg, split, 10, 0, 2).indices(0))
    assert ranks[0].steps == (1437 // 2) // cfg.batch_size


def test_epoch_batches_are_reproducible(digits: Path) -> None:
    cfg = cfg_for(digits, batch_size=100, auto_augment="randaug-m9-mstd0.5", re_prob=0.5, num_samples=300,
                  mixup=0.2, cutmix=1.0, cutmix_prob=1.0)
    split = scan_split(str(digits), "train", "train_split")
    data = TrainData(cfg, split, 10, 0, 1)
    first = list(data.batches(1, SkipCounter()))
    again = list(TrainData(cfg.replace(num_parallel_workers=1), split, 10, 0, 1).batches(1, SkipCounter()))
    assert len(first) == data.steps == 3
    for (x1, y1), (x2, y2) in zip(first, again):
        assert x1.shape == (100, 3, 32, 32) and y1.shape == (100, 10)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_allclose(y1.sum(1), 1.0, rtol=1e-6)
    other = next(iter(data.batches(2, SkipCounter())))[0]
    assert not np.array_equal(first[0][0], other)


def test_corrupt_images_are_skipped_and_counted(tmp_path: Path) -> None:
    root = small_tree(tmp_path, per_class=4)
    (root / "train" / "class1" / "9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "train" / "class2" / "8_empty.jpg").write_bytes(b"")
    (root / "val" / "class0" / "7_truncated.png").write_bytes((root / "val" / "class0" / "0.png").read_bytes()[:60])
    cfg = cfg_for(root, batch_size=4, image_resize=16)
    split = scan_split(str(root), "train", "train_split")
    data = TrainData(cfg, split, 3, 0, 1)
    assert split.size == 14 and data.steps == 3
    skipped = SkipCounter()
    batches = list(data.batches(0, skipped))
    assert len(batches) == 3 and skipped.count == 2
    assert all(x.shape == (4, 3, 16, 16) for x, _ in batches)
    skipped = SkipCounter()
    images = sum(len(y) for _, y in eval_batches(cfg, scan_split(str(root), "val", "val_split"), 0, 1, skipped))
    assert (images, skipped.count) == (12, 1)


def test_short_epoch_rereads_first_batches(tmp_path: Path) -> None:
    root = small_tree(tmp_path, per_class=3, classes=2)
    for name in ("1.png", "2.png"):
        (root / "train" / "class0" / name).write_bytes(b"garbage")
    cfg = cfg_for(root, batch_size=2, shuffle=False)
    data = TrainData(cfg, scan_split(str(root), "train", "train_split"), 2, 0, 1)
    skipped = SkipCounter()
    batches = list(data.batches(0, skipped))
    assert data.steps == 3 and len(batches) == 3 and skipped.count == 2
    np.testing.assert_array_equal(batches[2][0], batches[0][0])


def test_batch_mixer_follows_mindcv() -> None:
    cfg = load_config(None, {"mixup": 0.2, "cutmix": 1.0, "cutmix_prob": 0.0})
    images = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    labels = np.array([0, 1, 2, 3], np.int32)
    keys = np.arange(4, dtype=np.uint32)
    out, target, _ = BatchMixer(cfg, 0, 5)(images, labels, keys)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(target, np.eye(5, dtype=np.float32)[labels])
    mixup_only = load_config(None, {"mixup": 0.2, "cutmix_prob": 1.0})
    out, target, _ = BatchMixer(mixup_only, 0, 5)(images, labels, keys)
    lam = target[0, 0]
    assert 0 < lam < 1 and target[0, 3] == pytest.approx(1 - lam)
    np.testing.assert_allclose(out, images * lam + images[::-1] * (1 - lam), rtol=1e-5, atol=1e-6)
    cutmix_only = load_config(None, {"cutmix": 1.0, "cutmix_prob": 1.0})
    out, target, _ = BatchMixer(cutmix_only, 3, 5)(images, labels, keys)
    pasted = np.mean(out[0] != images[0])
    assert target[0, 0] == pytest.approx(1 - pasted, abs=1e-6)


def test_randaugment_policy_and_ops() -> None:
    assert parse_policy("randaug-m9-mstd0.5") == Policy(magnitude=9, num_ops=2, magnitude_std=0.5)
    assert parse_policy("randaug-m9-mstd0.5-inc1").increasing
    assert parse_policy("randaug-m7-n3-mstd101-w0") == Policy(7, 3, float("inf"), 10.0, False, True)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    for increasing in (False, True):
        augment = RandAugment(Policy(9, 2, 0.5, increasing=increasing), (124, 116, 104), Image.Resampling.BICUBIC)
        for op in augment.ops:
            out = augment.apply(op, img, 9.0, np.random.default_rng(1))
            assert out.size == img.size and out.mode == "RGB", op
    assert len(OPS) == 14
