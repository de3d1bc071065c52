"""Mixup and CutMix on whole batches, as MindCV applies them after batching.

A batch is mixed with probability ``cutmix_prob``; when both ``mixup`` and ``cutmix`` alphas are
positive, CutMix is chosen half of the time. The batch is paired with itself reversed, the mixing
weight is drawn from Beta(alpha, alpha) (for CutMix, corrected to the pasted box's area) and the
labels become the same mix of one-hot targets. Once mixing is on, every batch gets one-hot float
labels, mixed or not (label smoothing is applied by the loss).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MIX_STREAM = 0x6D6978


def mixing_enabled(cfg: Any) -> bool:
    """True when batches get mixup/cutmix and soft labels."""
    return cfg.mixup + cfg.cutmix > 0 and cfg.batch_size > 1


class BatchMixer:
    """(images NCHW, int labels, per-image keys) -> (mixed images, soft labels, keys)."""

    def __init__(self, cfg: Any, epoch: int, num_classes: int) -> None:
        self.mixup, self.cutmix, self.prob = cfg.mixup, cfg.cutmix, cfg.cutmix_prob
        self.seed, self.epoch = cfg.seed, epoch
        self.eye = np.eye(num_classes, dtype=np.float32)

    def __call__(self, images: np.ndarray, labels: np.ndarray, keys: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mix one batch (the generator is seeded by the batch's image keys)."""
        rng = np.random.default_rng([self.seed, self.epoch, MIX_STREAM, *map(int, keys[:4]), len(keys)])
        lam, use_cutmix = 1.0, False
        if rng.random() < self.prob:
            if self.mixup > 0 and self.cutmix > 0:
                use_cutmix = bool(rng.random() < 0.5)
                alpha = self.cutmix if use_cutmix else self.mixup
            else:
                use_cutmix = self.mixup <= 0
                alpha = self.cutmix if use_cutmix else self.mixup
            lam = float(rng.beta(alpha, alpha))
        images = images.astype(np.float32, copy=True)
        partner = images[::-1]
        if lam < 1.0:
            if use_cutmix:
                y0, y1, x0, x1 = cut_box(images.shape[2], images.shape[3], lam, rng)
                images[:, :, y0:y1, x0:x1] = partner[:, :, y0:y1, x0:x1].copy()
                lam = 1.0 - (y1 - y0) * (x1 - x0) / float(images.shape[2] * images.shape[3])
            else:
                images = images * lam + partner * (1.0 - lam)
        onehot = self.eye[labels.astype(np.int64)]
        target = onehot * lam + onehot[::-1] * (1.0 - lam)
        return images.astype(np.float32), target.astype(np.float32), keys


def cut_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box of area about (1 - lam) of the image around a uniform center, clipped to the image."""
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return y0, y1, x0, x1
