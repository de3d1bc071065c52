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
from pathlib import Path
from typing import Any, Iterator

import yaml

from space.basics.documents import load_mapping
from space.basics.errors import UsageError

from .augment import parse_policy
from .config_keys import KEY_BY_NAME, KEYS, RUN_KEYS, Key


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
    return load_mapping(path, "config file")


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
