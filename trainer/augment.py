"""RandAugment on PIL images, driven by a per-image random generator.

The policy string is the one MindCV (after timm) uses: ``randaug-m9-mstd0.5`` = magnitude 9 out of
10, magnitude noise with std 0.5, two operations per image (``n2``), each applied with probability
0.5; ``mmax`` caps the magnitude, ``inc1`` selects the increasing-severity variants and ``w0`` the
weighted operation choice. Operation strengths follow the same definitions (rotate up to 30
degrees, shear up to 0.3, translate up to 45% of the size, enhancements in [0.1, 1.9], ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from space.basics.errors import UsageError

LEVEL_MAX = 10.0
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
       "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY")
INCREASING = {"Posterize": "PosterizeIncreasing", "Solarize": "SolarizeIncreasing", "Color": "ColorIncreasing",
              "Contrast": "ContrastIncreasing", "Brightness": "BrightnessIncreasing",
              "Sharpness": "SharpnessIncreasing"}
CHOICE_WEIGHTS = {"Rotate": 0.3, "ShearX": 0.2, "ShearY": 0.2, "TranslateX": 0.1, "TranslateY": 0.1,
                  "Color": 0.025, "Sharpness": 0.025, "AutoContrast": 0.025, "Solarize": 0.005,
                  "Contrast": 0.005, "Brightness": 0.005, "Equalize": 0.005, "Posterize": 0.005, "Invert": 0.0}


@dataclass(frozen=True)
class Policy:
    """A parsed RandAugment policy."""

    magnitude: float = 10.0
    num_ops: int = 2
    magnitude_std: float = 0.5
    magnitude_max: float = LEVEL_MAX
    increasing: bool = False
    weighted: bool = False


def parse_policy(text: str, where: str = "auto_augment") -> Policy:
    """Parse ``randaug-m9-mstd0.5[-n2][-mmax10][-inc1][-w0]``; other policies are a UsageError."""
    parts = text.strip().split("-")
    if parts[0] != "randaug":
        raise UsageError(f"{where}: auto_augment {text!r} - only RandAugment policies are supported, "
                         "e.g. randaug-m9-mstd0.5 (or null)")
    fields: dict = {}
    for part in parts[1:]:
        m = re.fullmatch(r"(mstd|mmax|inc|m|n|w)(\d+(?:\.\d+)?)", part)
        if m is None:
            raise UsageError(f"{where}: auto_augment {text!r} - unknown section {part!r}; "
                             "sections: m<magnitude>, n<ops>, mstd<std>, mmax<max>, inc<0|1>, w0")
        key, value = m.group(1), float(m.group(2))
        if key == "m":
            fields["magnitude"] = value
        elif key == "n":
            fields["num_ops"] = int(value)
        elif key == "mstd":
            fields["magnitude_std"] = float("inf") if value > 100 else value
        elif key == "mmax":
            fields["magnitude_max"] = value
        elif key == "inc":
            fields["increasing"] = bool(value)
        elif value != 0:
            raise UsageError(f"{where}: auto_augment {text!r} - only weight set w0 exists")
        else:
            fields["weighted"] = True
    policy = Policy(**fields)
    if policy.num_ops < 1:
        raise UsageError(f"{where}: auto_augment {text!r} - n must be >= 1")
    return policy


class RandAugment:
    """Apply ``num_ops`` random operations of ``policy`` to a PIL image with a given generator."""

    def __init__(self, policy: Policy, fill: tuple[int, int, int], resample: int) -> None:
        self.policy = policy
        self.fill = fill
        self.resample = resample
        self.ops = tuple(INCREASING.get(op, op) if policy.increasing else op for op in OPS)
        if policy.weighted:
            weights = np.array([CHOICE_WEIGHTS[op] for op in OPS])
            self.weights = weights / weights.sum()
        else:
            self.weights = None

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """The augmented image."""
        chosen = rng.choice(len(self.ops), self.policy.num_ops, replace=self.weights is None, p=self.weights)
        for index in chosen:
            if rng.random() < 0.5:
                img = self.apply(self.ops[index], img, self.level(rng), rng)
        return img

    def level(self, rng: np.random.Generator) -> float:
        """The magnitude of one operation, with noise, clipped to [0, magnitude_max]."""
        p = self.policy
        magnitude = p.magnitude
        if p.magnitude_std == float("inf"):
            magnitude = rng.uniform(0.0, magnitude)
        elif p.magnitude_std > 0:
            magnitude = rng.normal(magnitude, p.magnitude_std)
        return float(min(max(magnitude, 0.0), p.magnitude_max))

    def apply(self, op: str, img: Image.Image, level: float, rng: np.random.Generator) -> Image.Image:
        """One operation at ``level`` (0-10 scale)."""
        frac = level / LEVEL_MAX
        sign = -1.0 if rng.random() < 0.5 else 1.0
        if op == "AutoContrast":
            return ImageOps.autocontrast(img)
        if op == "Equalize":
            return ImageOps.equalize(img)
        if op == "Invert":
            return ImageOps.invert(img)
        if op == "Rotate":
            return img.rotate(sign * 30.0 * frac, resample=self.resample, fillcolor=self.fill)
        if op.startswith("Posterize"):
            bits = int(frac * 4)
            bits = 4 - bits if op.endswith("Increasing") else bits
            return img if bits >= 8 else ImageOps.posterize(img, max(bits, 0))
        if op.startswith("Solarize"):
            threshold = int(frac * 256)
            return ImageOps.solarize(img, 256 - threshold if op.endswith("Increasing") else threshold)
        if op in ("Color", "Contrast", "Brightness", "Sharpness"):
            return ENHANCERS[op](img).enhance(frac * 1.8 + 0.1)
        if op.endswith("Increasing"):
            return ENHANCERS[op[:-len("Increasing")]](img).enhance(max(0.1, 1.0 + sign * frac * 0.9))
        if op in ("ShearX", "ShearY"):
            s = sign * 0.3 * frac
            matrix = (1, s, 0, 0, 1, 0) if op == "ShearX" else (1, 0, 0, s, 1, 0)
            return img.transform(img.size, Image.Transform.AFFINE, matrix, resample=self.resample,
                                 fillcolor=self.fill)
        if op in ("TranslateX", "TranslateY"):
            shift = sign * 0.45 * frac * (img.size[0] if op == "TranslateX" else img.size[1])
            matrix = (1, 0, shift, 0, 1, 0) if op == "TranslateX" else (1, 0, 0, 0, 1, shift)
            return img.transform(img.size, Image.Transform.AFFINE, matrix, resample=self.resample,
                                 fillcolor=self.fill)
        raise AssertionError(op)


ENHANCERS = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
             "Brightness": ImageEnhance.Brightness, "Sharpness": ImageEnhance.Sharpness}
