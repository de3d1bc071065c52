"""Validation: top-1/top-5 (percent) and loss over the val split, summed across ranks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np

from mixnet.checkpoint import read_checkpoint
from space import Genome, parse_genome
from space.basics.errors import UsageError

from .checkpointing import load_network_weights, read_meta
from .data import Split, eval_batches, scan_split
from .distributed import Ranks, all_sum
from .model import apply_amp, build_network, resolve_genome
from .runtime import set_runtime
from .transforms import SkipCounter

log = logging.getLogger("trainer")


def batch_counts(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(top-1 hits, top-5 hits, summed cross-entropy) of one batch; top-5 means top-min(5, classes)."""
    k = min(5, logits.shape[1])
    top_k = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    top1 = float((logits.argmax(1) == labels).sum())
    top5 = float((top_k == labels[:, None]).any(1).sum())
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return top1, top5, float(-log_probs[np.arange(len(labels)), labels].sum())


def evaluate_network(net: Any, cfg: Any, split: Split, ranks: Ranks) -> dict:
    """Run ``net`` (eval mode) over the split: {"top1", "top5", "loss", "n", "skipped"}.

    Every batch is padded to ``batch_size`` so graph mode compiles the forward once.
    """
    net.set_train(False)
    skipped = SkipCounter()
    sums = np.zeros(3)
    n = 0
    for images, labels in eval_batches(cfg, split, ranks.rank, ranks.world, skipped):
        count = len(labels)
        if count < cfg.batch_size:
            pad = np.zeros((cfg.batch_size - count,) + images.shape[1:], images.dtype)
            images = np.concatenate([images, pad])
        logits = net(ms.Tensor(images)).asnumpy().astype(np.float64)[:count]
        sums += batch_counts(logits, labels.astype(np.int64))
        n += count
    total = all_sum([*sums, n, skipped.count], ranks)
    hits1, hits5, loss_sum, n_all, skipped_all = total
    if n_all == 0:
        return {"top1": 0.0, "top5": 0.0, "loss": float("nan"), "n": 0, "skipped": int(skipped_all)}
    return {"top1": float(100.0 * hits1 / n_all), "top5": float(100.0 * hits5 / n_all), "loss": float(loss_sum / n_all),
            "n": int(n_all), "skipped": int(skipped_all)}


def evaluate(cfg: Any, ckpt_path: "str | Path", genome: "Genome | str | None" = None) -> dict:
    """Top-1/top-5 (percent) and image count of a checkpoint on ``cfg.val_split``.

    The network is ``genome`` if given, else ``cfg.genome``, else the genome recorded in a MixNAS
    checkpoint, else the ``cfg.model`` preset; MindCV checkpoints (its parameter names) load as they are.
    """
    set_runtime(cfg)
    split = scan_split(cfg.data_dir, cfg.val_split, "val_split")
    params = read_checkpoint(ckpt_path)
    recorded = read_meta(params).get("genome")
    num_classes = cfg.num_classes or len(split.classes)
    if genome is None and cfg.genome is None and recorded:
        built = parse_genome(recorded)
        if cfg.num_classes is None:
            num_classes = built.num_classes
        built = built.with_changes(num_classes=num_classes)
    else:
        built = resolve_genome(cfg, genome, num_classes)
    if num_classes < len(split.classes):
        raise UsageError(f"num_classes {num_classes} is fewer than the {len(split.classes)} class folders "
                         f"of '{split.root}'")
    ms.set_seed(cfg.seed)
    net = build_network(built, cfg.in_channels, cfg.mixconv_impl)
    load_network_weights(net, params, ckpt_path)
    metrics = evaluate_network(apply_amp(net, cfg.val_amp_level), cfg, split, Ranks())
    if metrics["skipped"]:
        log.warning("skipped %d unreadable images in %s", metrics["skipped"], split.root)
    return {"top1": metrics["top1"], "top5": metrics["top5"], "n": metrics["n"]}
