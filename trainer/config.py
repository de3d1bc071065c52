"""Training configuration: MindCV's key names, defaults and meanings, loaded from YAML plus overrides.

Every key of MindCV's ``config.py`` is accepted, with MindCV's defaults except ``data_dir`` (none),
``device_target`` (the installed MindSpore's device) and ``model`` (``mixnet_s``). Also accepted:
MindCV's older ``filter_bias_and_bn`` / ``dynamic_loss_scale`` and the MixNAS keys ``genome``,
``width``, ``se_act``, ``head_init_scale`` and ``decay_epochs: null`` (= ``epoch_size - warmup_epochs``).
A MindCV option this trainer does not implement is a one-line error naming what is allowed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from mixnet.devices import DEVICES
from space.basics.errors import UsageError

from .augment import parse_policy

IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]
OPTIMIZERS = ("momentum", "sgd", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULERS = ("cosine_decay", "warmup_cosine_decay", "constant", "step_decay", "multi_step_decay",
              "exponential_decay")
AMP_LEVELS = ("O0", "O1", "O2", "O3")
INTERPOLATIONS = ("bilinear", "linear", "bicubic", "cubic", "nearest", "area", "antialias", "lanczos")


@dataclass(frozen=True)
class Key:
    """One config key: default, value kind, whether ``null`` is allowed, and help text."""

    name: str
    default: Any
    kind: str
    help: str
    nullable: bool = False
    choices: tuple = ()


def _keys() -> tuple[Key, ...]:
    """The key table, grouped as MindCV's ``config.py`` groups them."""
    k = Key
    return (
        # system
        k("mode", 0, "int", "0 = GRAPH_MODE (compiled), 1 = PYNATIVE_MODE", choices=(0, 1)),
        k("distribute", False, "bool", "data-parallel training under msrun (one process per device)"),
        k("val_while_train", False, "bool", "validate on val_split every val_interval epochs"),
        k("val_interval", 1, "int", "epochs between validations"),
        k("log_interval", 100, "int", "steps between progress lines when stderr is not a terminal"),
        k("seed", 42, "int", "seed of weights, data order and augmentation"),
        k("device_target", None, "str", "CPU, GPU or Ascend (null: the installed MindSpore's device)",
          nullable=True, choices=DEVICES),
        # dataset
        k("dataset", "imagenet", "str", "'imagenet' or '' (any ImageFolder tree)", choices=("imagenet", "")),
        k("data_dir", "", "str", "dataset root holding train_split/ and val_split/ class folders"),
        k("train_split", "train", "str", "folder name of the training split"),
        k("val_split", "val", "str", "folder name of the validation split"),
        k("dataset_download", False, "bool", "must stay False: nothing is downloaded"),
        k("num_parallel_workers", 8, "int", "data-pipeline worker threads"),
        k("shuffle", True, "bool", "shuffle the training set every epoch"),
        k("num_samples", None, "int", "use only this many training images per epoch", nullable=True),
        k("batch_size", 128, "int", "images per step per device"),
        k("drop_remainder", True, "bool", "drop the last incomplete training batch"),
        k("aug_repeats", 0, "int", "repeated augmentation (only 0 or 1 supported)"),
        # augmentation
        k("image_resize", 224, "int", "training crop and validation crop size"),
        k("scale", [0.08, 1.0], "pair", "random-resized-crop area range"),
        k("ratio", [0.75, 1.333], "pair", "random-resized-crop aspect-ratio range"),
        k("hflip", 0.5, "float", "horizontal flip probability"),
        k("vflip", 0.0, "float", "vertical flip probability"),
        k("color_jitter", 0.4, "jitter", "brightness/contrast/saturation jitter when auto_augment is null",
          nullable=True),
        k("interpolation", "bilinear", "str", "resize interpolation", choices=INTERPOLATIONS),
        k("auto_augment", None, "str", "RandAugment policy, e.g. randaug-m9-mstd0.5 (null: none)",
          nullable=True),
        k("aug_splits", 0, "int", "augmentation splits (only 0 supported)"),
        k("re_prob", 0.0, "float", "random-erasing probability"),
        k("re_scale", [0.02, 0.33], "pair", "random-erasing area range"),
        k("re_ratio", [0.3, 3.3], "pair", "random-erasing aspect-ratio range"),
        k("re_value", 0, "fill", "random-erasing fill: a number, three numbers or 'random'"),
        k("re_max_attempts", 10, "int", "random-erasing attempts before giving up"),
        k("mean", IMAGENET_MEAN, "triple", "per-channel mean on the 0-255 scale"),
        k("std", IMAGENET_STD, "triple", "per-channel std on the 0-255 scale"),
        k("crop_pct", 0.875, "float", "validation: resize to image_resize/crop_pct, then center crop"),
        k("mixup", 0.0, "float", "mixup Beta alpha (0: off)"),
        k("cutmix", 0.0, "float", "cutmix Beta alpha (0: off)"),
        k("cutmix_prob", 1.0, "float", "probability that a batch is mixed (mixup or cutmix)"),
        # model
        k("model", "mixnet_s", "str", "preset to build: mixnet_s, mixnet_m, mixnet_l"),
        k("num_classes", None, "int", "classifier size (null: number of class folders)", nullable=True),
        k("in_channels", 3, "int", "input image channels (images are decoded as RGB: 3)", choices=(3,)),
        k("drop_rate", None, "float", "dropout before the classifier (null: the genome's)", nullable=True),
        k("drop_path_rate", None, "float", "stochastic depth (MixNet has none: null or 0)", nullable=True),
        k("pretrained", False, "bool", "must stay False: give weights with ckpt_path"),
        k("ckpt_path", "", "str", "initialize from this checkpoint (with resume_opt: resume its run)"),
        k("resume_opt", False, "bool", "also restore optimizer, schedule, EMA and loss-scale state"),
        k("keep_checkpoint_max", 10, "int", "epoch checkpoints kept"),
        k("ckpt_save_dir", "./ckpt", "str", "checkpoints, best.ckpt and metrics.csv"),
        k("ckpt_save_interval", 1, "int", "epochs between checkpoints"),
        k("ckpt_save_policy", "latest_k", "str", "keep the latest_k or the top_k (by val top-1) checkpoints",
          nullable=True, choices=("latest_k", "top_k")),
        k("epoch_size", 90, "int", "training epochs"),
        k("dataset_sink_mode", True, "bool", "accepted for MindCV files; steps always run from Python"),
        k("ema", False, "bool", "keep an exponential moving average of the weights"),
        k("ema_decay", 0.9999, "float", "EMA decay (ramped up as decay * (1 - exp(-updates / 2000)))"),
        k("clip_grad", False, "bool", "clip gradients by global norm"),
        k("clip_value", 15.0, "float", "global-norm clip value"),
        k("layer_decay", None, "float", "layer-wise LR decay (not supported: null)", nullable=True),
        k("gradient_accumulation_steps", 1, "int", "gradient accumulation (only 1 supported)"),
        # optimizer
        k("opt", "adam", "str", "optimizer", choices=OPTIMIZERS),
        k("momentum", 0.9, "float", "momentum (momentum, sgd, nesterov, rmsprop)"),
        k("weight_decay", 1e-6, "float", "weight decay"),
        k("use_nesterov", False, "bool", "Nesterov momentum"),
        k("weight_decay_filter", "disable", "str", "disable: decay every parameter; auto: not BN "
          "gamma/beta; norm_and_bias: not BN gamma/beta nor biases", choices=("disable", "auto", "norm_and_bias")),
        k("filter_bias_and_bn", None, "bool", "older MindCV switch: True = weight_decay_filter "
          "norm_and_bias, False = disable (null: use weight_decay_filter)", nullable=True),
        k("eps", 1e-10, "float", "RMSProp epsilon"),
        # scheduler
        k("scheduler", "cosine_decay", "str", "LR schedule after warmup", choices=SCHEDULERS),
        k("lr", 0.001, "float", "peak learning rate"),
        k("min_lr", 1e-6, "float", "cosine floor"),
        k("warmup_epochs", 3, "int", "linear warmup epochs (per step)"),
        k("warmup_factor", 0.0, "float", "warmup starts at warmup_factor * lr"),
        k("decay_epochs", 100, "int", "cosine length / step_decay period (null: epoch_size - warmup_epochs)",
          nullable=True),
        k("decay_rate", 0.9, "float", "step/multi-step/exponential decay factor"),
        k("multi_step_decay_milestones", [30, 60, 90], "ints", "multi_step_decay epochs (counted after warmup)"),
        k("lr_epoch_stair", False, "bool", "change the LR once per epoch instead of every step"),
        k("num_cycles", 1, "int", "cosine cycles"),
        k("cycle_decay", 1.0, "float", "peak LR factor per cosine cycle"),
        # loss
        k("loss", "CE", "str", "cross-entropy (the only loss for classification here)", choices=("CE",)),
        k("label_smoothing", 0.0, "float", "label smoothing"),
        k("aux_factor", 0.0, "float", "auxiliary-logit loss factor: 0 (MixNet has no auxiliary head)"),
        k("reduction", "mean", "str", "loss reduction", choices=("mean",)),
        # mixed precision
        k("amp_level", "O0", "str", "O0 fp32, O1 white-list fp16, O2 all but black-list, O3 all fp16",
          choices=AMP_LEVELS),
        k("val_amp_level", "O0", "str", "AMP level of validation", choices=AMP_LEVELS),
        k("amp_cast_list", None, "str", "custom cast list (not supported: null)", nullable=True),
        k("loss_scale_type", "fixed", "str", "fixed or dynamic loss scale", choices=("fixed", "dynamic")),
        k("loss_scale", 1.0, "float", "(initial) loss scale"),
        k("drop_overflow_update", False, "bool", "skip the update of a step whose gradients overflow"),
        k("dynamic_loss_scale", False, "bool", "older MindCV switch: True = loss_scale_type dynamic"),
        k("eval_shuffle", False, "bool", "accepted for MindCV files; validation order does not change results"),
        # MixNAS
        k("genome", None, "str", "train this genome (preset, one-line genome or file) instead of model",
          nullable=True),
        k("width", None, "float", "width multiplier override for the model/genome", nullable=True),
        k("se_act", None, "str", "SE activation (null: relu for a model preset as MindCV builds it, "
          "the genome's own for a genome)", nullable=True, choices=("relu", "swish")),
        k("head_init_scale", None, "float", "multiply the classifier's initial weights (timm's head-init-scale; "
          "null: keep them)", nullable=True),
        k("mixconv_impl", "auto", "str", "MixConv implementation: auto (the fastest measured on the device), "
          "split (MindCV's computation), fused or custom (C++ kernels, CPU)",
          choices=("auto", "split", "fused", "custom")),
    )


KEYS: tuple[Key, ...] = _keys()
KEY_BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}
RUN_KEYS = ("data_dir", "num_parallel_workers", "log_interval", "ckpt_path", "resume_opt", "keep_checkpoint_max",
            "ckpt_save_dir", "ckpt_save_interval", "ckpt_save_policy", "dataset_sink_mode", "val_while_train",
            "val_interval", "device_target", "mode", "eval_shuffle", "dataset_download", "distribute",
            "val_amp_level", "val_split", "mixconv_impl")


class TrainConfig(Mapping):
    """Validated settings: ``cfg.lr`` and ``cfg["lr"]`` both work; immutable (see :meth:`replace`)."""

    def __init__(self, values: dict[str, Any], source: str = "defaults") -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "source", source)

    def __getattr__(self, name: str) -> Any:
        """A setting as an attribute."""
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TrainConfig is immutable; use cfg.replace(key=value)")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"TrainConfig({self.source})"

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of every setting."""
        return json.loads(json.dumps(self._values))

    def replace(self, **overrides: Any) -> "TrainConfig":
        """A new config with some keys changed (validated like any override)."""
        return build_config(self.to_dict(), overrides, self.source, "override")

    def run_settings(self) -> dict[str, Any]:
        """The settings that shape the trained weights (all but paths, logging and checkpoint policy)."""
        return {k: v for k, v in self._values.items() if k not in RUN_KEYS}

    @property
    def effective_decay_epochs(self) -> int:
        """``decay_epochs``, with null meaning the epochs after warmup."""
        if self.decay_epochs is None:
            return max(1, self.epoch_size - self.warmup_epochs)
        return self.decay_epochs


def close_keys(name: str) -> list[str]:
    """Config keys spelled like ``name``."""
    return difflib.get_close_matches(name, list(KEY_BY_NAME), n=3, cutoff=0.6)


def unknown_key(key: str, where: str) -> UsageError:
    """The error for a key MindCV and MixNAS do not know, with the close matches."""
    close = close_keys(key)
    hint = f"did you mean {', '.join(close)}?" if close else "see `search.py train --help` for the keys"
    return UsageError(f"{where}: unknown key '{key}' - {hint}")


def load_config(path: "str | Path | None" = None, overrides: "dict | None" = None) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (MindCV format), then ``overrides``; all validated.

    Override values may be Python values or strings as typed on a command line (``"0.1"``,
    ``"True"``, ``"0.08,1.0"``, ``"null"``).
    """
    values = {key.name: key.default for key in KEYS}
    source = "defaults"
    if path is not None and str(path) != "":
        source = str(path)
        values = build_config(values, read_yaml(Path(path)), source, source).to_dict()
    return build_config(values, overrides or {}, source, "override")


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML config file; one-line errors for a missing or malformed file."""
    if not path.is_file():
        raise UsageError(f"config file '{path}' not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"config file '{path}' is not valid YAML{where}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(f"config file '{path}' must hold a mapping of keys to values")
    return doc


def build_config(base: dict[str, Any], changes: Mapping, source: str, where: str) -> TrainConfig:
    """``base`` with ``changes`` applied after coercing each value to its key's kind, then checked."""
    values = dict(base)
    for name, raw in changes.items():
        if name not in KEY_BY_NAME:
            raise unknown_key(str(name), where)
        values[name] = coerce(KEY_BY_NAME[name], raw, where)
    check_settings(values, where)
    return TrainConfig(values, source)


def coerce(key: Key, raw: Any, where: str) -> Any:
    """``raw`` as a value of ``key``'s kind; strings are parsed as YAML scalars or comma lists."""
    def bad(allowed: str) -> UsageError:
        return UsageError(f"{where}: {key.name} {raw!r} - must be {allowed}")

    value = raw
    if isinstance(raw, str) and key.kind != "str":
        value = _parse_text(raw)
    elif isinstance(raw, str) and key.nullable and raw.strip().lower() in ("null", "none", "~"):
        value = None
    if value is None:
        if key.nullable:
            return None
        if key.kind == "str" and key.default == "":
            return ""
        raise bad("given (null is not allowed)")
    if key.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad("True or False")
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise bad("an integer")
        value = int(value)
        if key.choices and value not in key.choices:
            raise bad(f"one of {', '.join(map(str, key.choices))}")
        return value
    if key.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if key.kind == "str":
        if not isinstance(value, str):
            value = str(value)
        if key.choices and value not in key.choices:
            shown = ", ".join(repr(c) if c == "" else c for c in key.choices)
            raise bad(f"one of {shown}")
        return value
    if key.kind in ("pair", "triple", "ints"):
        size = {"pair": 2, "triple": 3}.get(key.kind)
        items = value if isinstance(value, (list, tuple)) else None
        if items is None or (size and len(items) != size) or not all(_is_number(v) for v in items):
            raise bad({"pair": "two numbers, e.g. 0.08,1.0", "triple": "three numbers",
                       "ints": "a list of integers"}[key.kind])
        if key.kind == "ints":
            if not all(float(v) == int(v) for v in items):
                raise bad("a list of integers")
            return [int(v) for v in items]
        return [float(v) for v in items]
    if key.kind == "jitter":
        if _is_number(value):
            return float(value)
        if isinstance(value, (list, tuple)) and len(value) in (3, 4) and all(_is_number(v) for v in value):
            return [float(v) for v in value]
        raise bad("a number or 3-4 numbers (brightness, contrast, saturation[, hue])")
    if key.kind == "fill":
        if value == "random":
            return value
        if _is_number(value):
            return float(value)
        if isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_number(v) for v in value):
            return [float(v) for v in value]
        raise bad("a number, three numbers or 'random'")
    raise AssertionError(key.kind)


def _parse_text(text: str) -> Any:
    """A command-line string as YAML (``0.1``, ``True``, ``[1, 2]``, ``null``) or a comma list."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and "," in value:
        parts = [p.strip() for p in value.split(",")]
        try:
            return [yaml.safe_load(p) for p in parts]
        except yaml.YAMLError:
            return value
    return value


def _is_number(value: Any) -> bool:
    """True for ints and floats (not bools)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_settings(v: dict[str, Any], where: str) -> None:
    """Raise UsageError for a value out of range or a MindCV option this trainer does not provide."""
    def bad(name: str, allowed: str) -> UsageError:
        return UsageError(f"{where}: {name} {v[name]!r} - {allowed}")

    for name in ("batch_size", "epoch_size", "image_resize", "val_interval", "log_interval", "num_parallel_workers",
                 "keep_checkpoint_max", "ckpt_save_interval", "in_channels", "num_cycles", "re_max_attempts"):
        if v[name] < 1:
            raise bad(name, "must be an integer >= 1")
    for name in ("warmup_epochs", "aug_repeats", "aug_splits"):
        if v[name] < 0:
            raise bad(name, "must be an integer >= 0")
    for name in ("hflip", "vflip", "re_prob", "cutmix_prob", "label_smoothing", "warmup_factor"):
        if not 0.0 <= v[name] <= 1.0:
            raise bad(name, "must be a number in [0, 1]")
    for name in ("lr", "crop_pct", "loss_scale", "clip_value"):
        if v[name] <= 0:
            raise bad(name, "must be a number > 0")
    for name in ("min_lr", "weight_decay", "mixup", "cutmix", "momentum", "ema_decay", "eps"):
        if v[name] < 0:
            raise bad(name, "must be a number >= 0")
    if v["crop_pct"] > 1.0:
        raise bad("crop_pct", "must be a number in (0, 1]")
    if v["ema_decay"] >= 1.0:
        raise bad("ema_decay", "must be a number in [0, 1)")
    if v["loss_scale"] < 1.0:
        raise bad("loss_scale", "must be >= 1")
    for name in ("scale", "ratio", "re_scale", "re_ratio"):
        lo, hi = v[name]
        if not 0 < lo <= hi:
            raise bad(name, "must be two numbers 0 < low <= high")
    if v["scale"][1] > 1.0 or v["re_scale"][1] > 1.0:
        name = "scale" if v["scale"][1] > 1.0 else "re_scale"
        raise bad(name, "areas are fractions: the high end must be <= 1")
    if any(s <= 0 for s in v["std"]):
        raise bad("std", "must be three numbers > 0")
    if v["decay_epochs"] is not None and v["decay_epochs"] < 1:
        raise bad("decay_epochs", "must be an integer >= 1 or null")
    if v["num_samples"] is not None and v["num_samples"] < 1:
        raise bad("num_samples", "must be an integer >= 1 or null")
    if v["num_classes"] is not None and v["num_classes"] < 1:
        raise bad("num_classes", "must be an integer >= 1 or null")
    if v["width"] is not None and not 0 < v["width"] <= 8:
        raise bad("width", "must be a number in (0, 8] or null")
    if v["head_init_scale"] is not None and v["head_init_scale"] < 0:
        raise bad("head_init_scale", "must be a number >= 0 or null")
    if v["drop_rate"] is not None and not 0 <= v["drop_rate"] < 1:
        raise bad("drop_rate", "must be a number in [0, 1) or null")
    if v["auto_augment"] is not None:
        parse_policy(v["auto_augment"], where)
    unsupported = (
        ("dataset_download", True, "nothing is downloaded: put the data under data_dir"),
        ("pretrained", True, "weights are not downloaded: give a checkpoint file with ckpt_path"),
    )
    for name, value, reason in unsupported:
        if v[name] == value:
            raise bad(name, reason)
    if v["aug_repeats"] > 1:
        raise bad("aug_repeats", "repeated augmentation is not supported: use 0")
    if v["aug_splits"] != 0:
        raise bad("aug_splits", "augmentation splits are not supported: use 0")
    if v["gradient_accumulation_steps"] != 1:
        raise bad("gradient_accumulation_steps", "gradient accumulation is not supported: use 1")
    if v["aux_factor"] != 0.0:
        raise bad("aux_factor", "MixNet has no auxiliary head: use 0")
    if v["drop_path_rate"] not in (None, 0.0):
        raise bad("drop_path_rate", "MixNet has no stochastic depth: use null or 0")
    for name in ("layer_decay", "amp_cast_list"):
        if v[name] is not None:
            raise bad(name, "not supported: use null")
    if v["opt"] == "adamw" and v["use_nesterov"]:
        raise bad("use_nesterov", "adamw has no Nesterov variant")
