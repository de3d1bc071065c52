"""The training loop: build, resume, train epochs, validate, checkpoint, report."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

import mindspore as ms
import numpy as np
from mindspore import Tensor
from tqdm import tqdm

from mixnet.checkpoint import read_checkpoint
from space import Genome
from space.basics.errors import UsageError

from .checkpointing import (BEST_NAME, atomic_save, epoch_checkpoints, load_network_weights, prune, read_meta,
                            remove_stale_temporaries, restore_state)
from .data import Split, TrainData, check_same_classes, scan_split
from .distributed import Ranks, all_sum, setup
from .model import Networks, StandAlone, apply_amp, resolve_genome
from .optim import create_optimizer
from .records import METRICS_NAME, MetricsLog
from .runtime import set_runtime
from .schedule import lr_schedule
from .step import TrainForward, TrainStep, WeightEMA, dropout_mask
from .transforms import SkipCounter
from .validate import evaluate_network

log = logging.getLogger("trainer")


@dataclass
class TrainResult:
    """What a training run reached (top-1/top-5 in percent; None without a val split).

    ``images_per_second`` leaves out the run's first step (graph compilation, ``compile_seconds``);
    ``skipped_images`` counts the unreadable training images of the last epoch; ``weights_digest``
    is a SHA-256 of the final network weights (the same on every rank); ``mixconv_impl`` names the MixConv
    implementation the trained network computed with (``kernels->split (float16)`` when mixed precision
    made the kernels fall back; empty for a network that does not say).
    """

    best_top1: "float | None"
    final_top1: "float | None"
    final_top5: "float | None"
    epochs: int
    seconds: float
    images_per_second: float
    metrics_csv: "Path | None"
    best_ckpt: "Path | None"
    compile_seconds: float = 0.0
    skipped_images: int = 0
    weights_digest: str = ""
    mixconv_impl: str = ""


class Session:
    """Everything one run needs: networks, data, schedule, optimizer, step, and the state to save."""

    def __init__(self, cfg: Any, genome: Genome, train_split: Split, num_classes: int, ranks: Ranks,
                 turn: "Callable[[], ContextManager] | None" = None, networks: "Networks | None" = None) -> None:
        self.cfg, self.genome, self.ranks = cfg, genome, ranks
        self.turn: Callable[[], ContextManager] = turn or nullcontext
        self.networks = networks or StandAlone()
        ms.set_seed(cfg.seed)
        self.net = self.networks.build(genome, cfg)
        if cfg.head_init_scale is not None:
            weight = self.net.classifier.weight
            weight.set_data(Tensor(weight.asnumpy() * cfg.head_init_scale, weight.dtype))
        self.eval_net = apply_amp(self.networks.build(genome, cfg), cfg.val_amp_level)
        self.data = TrainData(cfg, train_split, num_classes, ranks.rank, ranks.world)
        self.steps = self.data.steps
        self.lrs = lr_schedule(cfg, self.steps)
        self.optimizer = create_optimizer(self.net.trainable_params(), cfg, self.lrs)
        self.ema = WeightEMA(list(self.net.get_parameters()), cfg.ema_decay) if cfg.ema else None
        forward = apply_amp(TrainForward(self.net), cfg.amp_level)
        self.step = TrainStep(forward, self.optimizer, cfg, self.data.soft_labels, ranks.world, self.ema)
        network = {p.name for p in self.net.get_parameters()}
        self.state = {p.name: p for p in self.step.get_parameters()
                      if p.name not in network and p.name != "learning_rate"}
        self.head_channels = self.net.classifier.in_channels

    def settings(self) -> dict[str, Any]:
        """The settings that must match for a checkpoint to continue this run."""
        settings = self.cfg.run_settings()
        settings.update(genome=self.genome.to_string(), num_classes=self.genome.num_classes,
                        world=self.ranks.world)
        return json.loads(json.dumps(settings))

    def network_weights(self) -> dict[str, Any]:
        """Network parameters by name."""
        return {p.name: p for p in self.net.get_parameters()}

    def validated_weights(self) -> dict[str, Any]:
        """The weights validation uses: the EMA when on, else the network's."""
        if self.ema is None:
            return self.network_weights()
        return {p.name[len("ema."):]: p for p in self.ema.shadow}

    def sync_eval_net(self) -> None:
        """Copy the validated weights into the evaluation network."""
        source = self.validated_weights()
        for p in self.eval_net.get_parameters():
            p.set_data(Tensor(source[p.name].asnumpy(), p.dtype))

    def sync_statistics(self) -> None:
        """Average BN moving statistics (and their EMA) over ranks, so every rank holds the same weights."""
        if self.ranks.world == 1:
            return
        params = [p for p in self.step.get_parameters() if "moving_" in p.name]
        flat = np.concatenate([p.asnumpy().astype(np.float32).ravel() for p in params])
        mean = all_sum(flat, self.ranks) / self.ranks.world
        offset = 0
        for p in params:
            p.set_data(Tensor(mean[offset:offset + p.size].reshape(p.shape), p.dtype))
            offset += p.size

    def weights_digest(self) -> str:
        """SHA-256 of the network weights (equal on every rank of a data-parallel run)."""
        digest = hashlib.sha256()
        for p in sorted(self.net.get_parameters(), key=lambda q: q.name):
            digest.update(p.name.encode())
            digest.update(np.ascontiguousarray(p.asnumpy()).tobytes())
        return digest.hexdigest()

    def global_step(self) -> int:
        """Optimizer steps taken so far."""
        return int(self.optimizer.global_step.asnumpy().reshape(-1)[0])


def train(cfg: Any, genome: "Genome | str | None" = None, on_epoch: "Callable[[int, dict], None] | None" = None,
          progress: bool = True, save_checkpoints: bool = True,
          device_turn: "Callable[[], ContextManager] | None" = None, networks: "Networks | None" = None) -> TrainResult:
    """Train ``genome`` (or ``cfg.genome`` / the ``cfg.model`` preset) with the recipe ``cfg``.

    ``on_epoch(epoch_index, metrics)`` runs after each epoch (metrics: top1, top5, loss, val_loss,
    lr, images_per_second, ...); an exception it raises stops training and propagates.
    With ``save_checkpoints``, rank 0 writes epoch checkpoints, ``best.ckpt`` and ``metrics.csv`` to
    ``ckpt_save_dir``, and a re-run of the same settings resumes from the newest checkpoint there.
    ``device_turn()`` (a context manager) is held around every step and validation, so a latency
    timing on the same device can take the device between steps. ``networks`` builds what is trained
    (default: the genome's MixNet) and may change it before each step and validation, or leave validation
    out (``networks.validates`` False: ``best.ckpt`` is then the last epoch's weights).
    """
    started = time.time()
    set_runtime(cfg)
    ranks = setup(cfg)
    train_split = scan_split(cfg.data_dir, cfg.train_split, "train_split")
    val_split = find_val_split(cfg, train_split)
    num_classes = cfg.num_classes or len(train_split.classes)
    if num_classes < len(train_split.classes):
        raise UsageError(f"num_classes {num_classes} is fewer than the {len(train_split.classes)} class folders "
                         f"of '{train_split.root}'")
    built = resolve_genome(cfg, genome, num_classes)
    session = Session(cfg, built, train_split, num_classes, ranks, device_turn, networks)
    prefix = run_prefix(cfg, genome, built)
    writing = save_checkpoints and ranks.is_main
    out_dir = Path(cfg.ckpt_save_dir)
    start, best = starting_point(cfg, session, out_dir, prefix, save_checkpoints)
    records = MetricsLog(out_dir / METRICS_NAME, start) if writing else None
    verbose = progress and ranks.is_main
    if verbose:
        say(f"training {prefix} ({sum(p.size for p in session.net.trainable_params()):,} parameters) on "
            f"{train_split.size} images x {cfg.epoch_size} epochs, {session.steps} steps/epoch of "
            f"{cfg.batch_size} x {ranks.world} rank(s)" + (f", resuming after epoch {start}" if start else ""))
    validating = getattr(session.networks, "validates", True)
    clock = Throughput()
    final: dict[str, Any] = {}
    skipped = 0
    for epoch in range(start, cfg.epoch_size):
        stats = run_epoch(session, epoch, clock, verbose)
        session.sync_statistics()
        skipped = int(stats["skipped_images"])
        metrics = dict(stats, epoch=epoch + 1, step=session.global_step(), top1=None, top5=None, val_loss=None,
                       val_images=None, val_seconds=None)
        if val_split is not None and validating and validation_due(cfg, epoch):
            metrics.update(validate(session, val_split))
            if metrics["top1"] > best.get("top1", -1.0):
                best = {"top1": metrics["top1"], "epoch": epoch + 1}
                if writing:
                    save_best(session, out_dir, epoch + 1, metrics["top1"])
        elif writing and not validating and epoch + 1 == cfg.epoch_size:
            save_best(session, out_dir, epoch + 1, None)
        metrics["best_top1"] = best.get("top1")
        if skipped and ranks.is_main:
            log.warning("epoch %d: skipped %d unreadable training images", epoch + 1, skipped)
        if writing:
            records.add(metrics)
            save_epoch(session, out_dir, prefix, epoch + 1, best, records)
        if verbose:
            say(epoch_line(metrics, cfg.epoch_size))
        final = metrics
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    if start >= cfg.epoch_size:
        final = finished_run_metrics(records, best, verbose, cfg.epoch_size)
    return TrainResult(best_top1=best.get("top1"), final_top1=final.get("top1"), final_top5=final.get("top5"),
                       epochs=cfg.epoch_size, seconds=time.time() - started,
                       images_per_second=clock.steady_rate(), metrics_csv=records.path if records else None,
                       best_ckpt=(out_dir / BEST_NAME) if writing and (out_dir / BEST_NAME).is_file() else None,
                       compile_seconds=clock.first_step_seconds or 0.0, skipped_images=skipped,
                       weights_digest=session.weights_digest(),
                       mixconv_impl=str(getattr(session.net, "mixconv_impl", "")))


def find_val_split(cfg: Any, train_split: Split) -> "Split | None":
    """The val split (required with val_while_train; else used for a final validation when present)."""
    if not cfg.val_while_train and not (Path(cfg.data_dir) / cfg.val_split).is_dir():
        return None
    split = scan_split(cfg.data_dir, cfg.val_split, "val_split")
    check_same_classes(train_split, split)
    return split


def run_prefix(cfg: Any, genome: "Genome | str | None", built: Genome) -> str:
    """Checkpoint file prefix: the preset name, or ``mixnet_<key>`` for a genome."""
    if genome is None and cfg.genome is None:
        return cfg.model
    return f"mixnet_{built.key()[:8]}"


def starting_point(cfg: Any, session: Session, out_dir: Path, prefix: str, save_checkpoints: bool
                   ) -> tuple[int, dict]:
    """Load ``ckpt_path`` (weights; with ``resume_opt`` the whole state) or this run's newest checkpoint.

    Returns the number of epochs already done and the best record so far.
    """
    if cfg.ckpt_path:
        params = read_checkpoint(cfg.ckpt_path)
        load_network_weights(session.net, params, cfg.ckpt_path)
        if not cfg.resume_opt:
            return 0, {}
        return resume(session, params, cfg.ckpt_path)
    if not save_checkpoints:
        return 0, {}
    if session.ranks.is_main:
        remove_stale_temporaries(out_dir)
    found = epoch_checkpoints(out_dir, prefix)
    if not found:
        return 0, {}
    path = found[-1][1]
    params = read_checkpoint(path)
    recorded = read_meta(params).get("settings", {})
    current = session.settings()
    differ = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
    if differ:
        raise UsageError(f"ckpt_save_dir '{out_dir}' holds a run with other settings ({', '.join(differ[:6])} "
                         f"differ) - use another ckpt_save_dir, or continue that run with --ckpt_path {path} "
                         "--resume_opt True")
    load_network_weights(session.net, params, path)
    return resume(session, params, path)


def resume(session: Session, params: dict, path: "str | Path") -> tuple[int, dict]:
    """Restore optimizer, schedule position, EMA and loss scale; check the steps per epoch agree."""
    restore_state(session.state, params, path)
    if "epoch_num" not in params:
        raise UsageError(f"checkpoint '{path}' records no epoch - resume_opt needs an epoch checkpoint "
                         "written by this trainer")
    epoch = int(np.asarray(params["epoch_num"].asnumpy()).reshape(-1)[0])
    if session.global_step() != epoch * session.steps:
        raise UsageError(f"checkpoint '{path}' took {session.global_step()} steps in {epoch} epochs; this run "
                         f"has {session.steps} steps per epoch (batch_size, num_samples or data changed)")
    meta = read_meta(params)
    best = {"top1": meta["best_top1"], "epoch": meta["best_epoch"]} if meta.get("best_top1") is not None else {}
    return epoch, best


class Throughput:
    """Training images per second, the run's first step (graph compilation) kept apart."""

    def __init__(self) -> None:
        self.first_step_seconds: "float | None" = None
        self.images = 0
        self.seconds = 0.0

    def add(self, images: int, seconds: float) -> None:
        """Record one step."""
        if self.first_step_seconds is None:
            self.first_step_seconds = seconds
            return
        self.images += images
        self.seconds += seconds

    def steady_rate(self) -> float:
        """Images per second after the first step."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


def run_epoch(session: Session, epoch: int, clock: Throughput, verbose: bool) -> dict[str, Any]:
    """Train one epoch; returns loss, lr, images, skipped images, seconds and images/s (all ranks)."""
    cfg, ranks = session.cfg, session.ranks
    session.step.set_train(True)
    skipped = SkipCounter()
    loss_sum, images_seen = 0.0, 0
    began = time.time()
    lines = verbose and not sys.stderr.isatty()
    bar = tqdm(total=session.steps, desc=f"epoch {epoch + 1}/{cfg.epoch_size}", unit="step", leave=False,
               disable=not verbose or lines, file=sys.stderr, dynamic_ncols=True)
    try:
        tick = time.time()
        for index, (images, labels) in enumerate(session.data.batches(epoch, skipped)):
            step = epoch * session.steps + index
            keep = dropout_mask(session.genome.dropout, len(images), session.head_channels, cfg.seed, ranks.rank,
                                step)
            session.networks.before_step(session.net, step)
            with session.turn():
                loss = float(session.step(Tensor(images), Tensor(labels), Tensor(keep)).asnumpy())
            now = time.time()
            clock.add(len(images) * ranks.world, now - tick)
            tick = now
            loss_sum += loss
            images_seen += len(images)
            rate = images_seen * ranks.world / max(now - began, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{session.lrs[step]:.3g}", img_s=f"{rate:.1f}", refresh=False)
            if lines and ((index + 1) % cfg.log_interval == 0 or index + 1 == session.steps):
                eta = (now - began) / (index + 1) * (session.steps - index - 1)
                say(f"epoch {epoch + 1}/{cfg.epoch_size} step {index + 1}/{session.steps} loss {loss:.4f} "
                    f"lr {session.lrs[step]:.4g} {rate:.1f} img/s, epoch ETA {eta:.0f}s")
    finally:
        bar.close()
    seconds = time.time() - began
    loss_total, steps_total, images_total, skipped_total = all_sum(
        [loss_sum, session.steps, images_seen, skipped.count], ranks)
    return {"loss": float(loss_total / steps_total), "lr": float(session.lrs[(epoch + 1) * session.steps - 1]),
            "train_images": int(images_total), "skipped_images": int(skipped_total), "train_seconds": seconds,
            "images_per_second": float(images_total / seconds) if seconds > 0 else 0.0}


def validation_due(cfg: Any, epoch: int) -> bool:
    """Validate after this epoch (every val_interval epochs with val_while_train, and after the last)."""
    last = epoch + 1 == cfg.epoch_size
    return last or (cfg.val_while_train and (epoch + 1) % cfg.val_interval == 0)


def validate(session: Session, split: Split) -> dict[str, Any]:
    """Validation metrics of the current (EMA) weights."""
    began = time.time()
    session.sync_eval_net()
    session.networks.before_validation(session.eval_net)
    with session.turn():
        result = evaluate_network(session.eval_net, session.cfg, split, session.ranks)
    if result["skipped"] and session.ranks.is_main:
        log.warning("skipped %d unreadable validation images", result["skipped"])
    return {"top1": result["top1"], "top5": result["top5"], "val_loss": result["loss"], "val_images": result["n"],
            "val_seconds": time.time() - began}


def save_best(session: Session, out_dir: Path, epoch: int, top1: "float | None") -> None:
    """Write ``best.ckpt``: the validated weights and the genome (``top1`` None: not validated)."""
    meta = {"genome": session.genome.to_string(), "epoch": epoch, "top1": top1}
    atomic_save(out_dir / BEST_NAME, session.validated_weights(), meta, epoch=epoch)


def save_epoch(session: Session, out_dir: Path, prefix: str, epoch: int, best: dict, records: MetricsLog) -> None:
    """Write the epoch checkpoint (every ckpt_save_interval epochs and the last) and prune old ones."""
    cfg = session.cfg
    if epoch % cfg.ckpt_save_interval and epoch != cfg.epoch_size:
        return
    meta = {"genome": session.genome.to_string(), "settings": session.settings(), "steps_per_epoch": session.steps,
            "best_top1": best.get("top1"), "best_epoch": best.get("epoch")}
    params = dict(session.network_weights(), **session.state)
    atomic_save(out_dir / f"{prefix}-{epoch}_{session.steps}.ckpt", params, meta, epoch=epoch,
                step=session.global_step())
    top1 = {int(row["epoch"]): float(row["top1"]) for row in records.rows if row.get("top1")}
    prune(out_dir, prefix, cfg.keep_checkpoint_max, cfg.ckpt_save_policy, top1)


def finished_run_metrics(records: "MetricsLog | None", best: dict, verbose: bool, epochs: int) -> dict[str, Any]:
    """The last recorded metrics of a run that had already finished."""
    if verbose:
        say(f"already trained {epochs} epochs" + (f" (best top-1 {best['top1']:.2f}%)" if best else ""))
    row = records.last() if records else None
    if not row:
        return {}
    return {k: float(row[k]) if row.get(k) else None for k in ("top1", "top5")}


def epoch_line(m: dict[str, Any], epochs: int) -> str:
    """One summary line for an epoch."""
    parts = [f"epoch {m['epoch']}/{epochs}", f"loss {m['loss']:.4f}", f"lr {m['lr']:.4g}",
             f"{m['images_per_second']:.1f} img/s", f"{m['train_seconds']:.1f}s"]
    if m.get("top1") is not None:
        parts += [f"val top-1 {m['top1']:.2f}%", f"top-5 {m['top5']:.2f}%", f"best {m['best_top1']:.2f}%"]
    return "  ".join(parts)


def say(message: str) -> None:
    """A progress message to stderr that does not break a running progress bar."""
    tqdm.write(message, file=sys.stderr)
