"""Per-image transforms: decode (unreadable images are skipped and counted), crops, flips,
RandAugment or color jitter, normalize, random erasing.

Every random choice comes from a generator seeded by (seed, epoch, CRC-32 of the image file), so an
epoch's images are the same whatever the number of worker threads and whether the run was resumed.
"""

from __future__ import annotations

import io
import math
import threading
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from .augment import RandAugment, parse_policy

PIL_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                "linear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                "cubic": Image.Resampling.BICUBIC, "area": Image.Resampling.BOX,
                "antialias": Image.Resampling.LANCZOS, "lanczos": Image.Resampling.LANCZOS}
AFFINE_RESAMPLE = (Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)
EMPTY = np.zeros((0, 0, 0), np.float32)


class SkipCounter:
    """Thread-safe count of images that could not be decoded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        """Count one unreadable image."""
        with self._lock:
            self.count += 1


def decode(raw: np.ndarray, skipped: SkipCounter) -> "Image.Image | None":
    """The file bytes as an RGB image, or None (counted) when they are not a readable image."""
    try:
        with Image.open(io.BytesIO(raw.tobytes())) as img:
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        skipped.add()
        return None


def normalize(img: Image.Image, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """HWC uint8 image -> CHW float32 ``(x - mean) / std`` (mean and std on the 0-255 scale)."""
    arr = (np.asarray(img, np.float32) - mean) / std
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class TrainTransform:
    """File bytes -> (CHW float32 image, uint32 key); an unreadable file gives an empty image."""

    def __init__(self, cfg: Any, epoch: int, skipped: SkipCounter) -> None:
        self.size = cfg.image_resize
        self.scale = tuple(cfg.scale)
        self.log_ratio = (math.log(cfg.ratio[0]), math.log(cfg.ratio[1]))
        self.resample = PIL_RESAMPLE[cfg.interpolation]
        self.hflip, self.vflip = cfg.hflip, cfg.vflip
        self.mean = np.array(cfg.mean, np.float32)
        self.std = np.array(cfg.std, np.float32)
        self.seed, self.epoch = cfg.seed, epoch
        self.skipped = skipped
        fill = tuple(min(255, round(x)) for x in cfg.mean)
        affine = self.resample if self.resample in AFFINE_RESAMPLE else Image.Resampling.BICUBIC
        self.randaug = RandAugment(parse_policy(cfg.auto_augment), fill, affine) if cfg.auto_augment else None
        jitter = cfg.color_jitter
        self.jitter = None if self.randaug or jitter is None else (
            [jitter] * 3 if isinstance(jitter, float) else list(jitter))
        self.erase = (cfg.re_prob, tuple(cfg.re_scale), (math.log(cfg.re_ratio[0]), math.log(cfg.re_ratio[1])),
                      cfg.re_value, cfg.re_max_attempts)

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.uint32]:
        """Decode and augment one training image."""
        img = decode(raw, self.skipped)
        if img is None:
            return EMPTY, np.uint32(0)
        key = zlib.crc32(raw.tobytes())
        rng = np.random.default_rng([self.seed, self.epoch, key])
        img = self.random_resized_crop(img, rng)
        if self.hflip > 0 and rng.random() < self.hflip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.vflip > 0 and rng.random() < self.vflip:
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if self.randaug is not None:
            img = self.randaug(img, rng)
        elif self.jitter is not None:
            img = color_jitter(img, self.jitter, rng)
        arr = normalize(img, self.mean, self.std)
        if self.erase[0] > 0 and rng.random() < self.erase[0]:
            random_erase(arr, self.erase[1:], rng)
        return arr, np.uint32(key)

    def random_resized_crop(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """A crop of random area (``scale``) and aspect ratio (``ratio``), resized to ``image_resize``."""
        width, height = img.size
        area = width * height
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*self.log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                x0 = int(rng.integers(0, width - w + 1))
                y0 = int(rng.integers(0, height - h + 1))
                break
        else:
            in_ratio = width / height
            lo, hi = math.exp(self.log_ratio[0]), math.exp(self.log_ratio[1])
            if in_ratio < lo:
                w, h = width, int(round(width / lo))
            elif in_ratio > hi:
                w, h = int(round(height * hi)), height
            else:
                w, h = width, height
            x0, y0 = (width - w) // 2, (height - h) // 2
        return img.resize((self.size, self.size), self.resample, box=(x0, y0, x0 + w, y0 + h))


def color_jitter(img: Image.Image, jitter: list[float], rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation (and hue) factors drawn around 1, applied in random order."""
    enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
    for index in rng.permutation(len(jitter)):
        amount = jitter[index]
        if amount <= 0:
            continue
        if index < 3:
            img = enhancers[index](img).enhance(rng.uniform(max(0.0, 1 - amount), 1 + amount))
        else:
            hsv = np.asarray(img.convert("HSV")).copy()
            hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.uniform(-amount, amount) * 255)) % 256
            img = Image.fromarray(hsv, "HSV").convert("RGB")
    return img


def random_erase(arr: np.ndarray, params: tuple, rng: np.random.Generator) -> None:
    """Fill one random rectangle of the CHW image in place (area and aspect drawn from the ranges)."""
    scale, log_ratio, value, attempts = params
    channels, height, width = arr.shape
    for _ in range(attempts):
        target = height * width * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        h = int(round(math.sqrt(target * aspect)))
        w = int(round(math.sqrt(target / aspect)))
        if 0 < h < height and 0 < w < width:
            y0 = int(rng.integers(0, height - h + 1))
            x0 = int(rng.integers(0, width - w + 1))
            if value == "random":
                arr[:, y0:y0 + h, x0:x0 + w] = rng.standard_normal((channels, h, w), dtype=np.float32)
            else:
                fill = np.asarray(value, np.float32).reshape(-1, 1, 1)
                arr[:, y0:y0 + h, x0:x0 + w] = fill
            return


class EvalTransform:
    """File bytes -> CHW float32: resize the short side to ``image_resize / crop_pct``, center crop."""

    def __init__(self, cfg: Any, skipped: SkipCounter) -> None:
        self.size = cfg.image_resize
        self.resize = int(math.floor(cfg.image_resize / cfg.crop_pct))
        self.resample = PIL_RESAMPLE[cfg.interpolation]
        self.mean = np.array(cfg.mean, np.float32)
        self.std = np.array(cfg.std, np.float32)
        self.skipped = skipped

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Decode and center-crop one validation image (empty when unreadable)."""
        img = decode(raw, self.skipped)
        if img is None:
            return EMPTY
        width, height = img.size
        scale = self.resize / min(width, height)
        new_w, new_h = max(self.size, round(width * scale)), max(self.size, round(height * scale))
        img = img.resize((new_w, new_h), self.resample)
        x0, y0 = (new_w - self.size) // 2, (new_h - self.size) // 2
        img = img.crop((x0, y0, x0 + self.size, y0 + self.size))
        return normalize(img, self.mean, self.std)
