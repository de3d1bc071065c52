"""The training keys: MindCV's names, defaults, kinds and meanings, plus the MixNAS keys (one place each)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixnet.devices import DEVICES
from mixnet.mixconv import IMPL_ALIASES, IMPL_CHOICES

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
          "split (MindCV's computation), padded (zero-padded kernels) or kernels (C++ kernels, CPU); "
          "fused and custom name padded and kernels", choices=IMPL_CHOICES + tuple(IMPL_ALIASES)),
    )


KEYS: tuple[Key, ...] = _keys()
KEY_BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}
RUN_KEYS = ("data_dir", "num_parallel_workers", "log_interval", "ckpt_path", "resume_opt", "keep_checkpoint_max",
            "ckpt_save_dir", "ckpt_save_interval", "ckpt_save_policy", "dataset_sink_mode", "val_while_train",
            "val_interval", "device_target", "mode", "eval_shuffle", "dataset_download", "distribute",
            "val_amp_level", "val_split", "mixconv_impl")
SCORE_KEYS = ("data_dir", "val_split", "val_amp_level")
"""The RUN_KEYS that still change a run's measured top-1 (a checkpoint resumes across them): the images it
reads, the split it is scored on and the precision it is scored at."""
COMPUTE_KEYS = ("device_target", "mixconv_impl")
"""The RUN_KEYS that choose what a run computes on: the device and the MixConv implementation (a checkpoint
resumes across them; a finished run is reused only under the same ones)."""
