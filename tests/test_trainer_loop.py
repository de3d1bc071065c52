"""The training loop on the digits with a tiny MixNet: checkpoints, exact resume, validate, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from conftest import ROOT, assert_user_error, run_cli
from space.basics.errors import UsageError
from trainer import evaluate, load_config, train, write_digits
from mixnet.checkpoint import read_checkpoint as load
from trainer.checkpointing import read_meta
from trainer.data import scan_split
from trainer.distributed import Ranks
from trainer.validate import evaluate_network
from test_mindcv_parity import randomize

TINY = ("stem8_head32_w1_d0.2_nc10,r1_k3_a1_p1_s2_e1_i8_o8_re,"
        "r1_k3.5_a1_p1_s2_e3_i8_o16_se0.25_sw_sesw")
RECIPE = ROOT / "configs" / "train" / "digits.yaml"
PREFIX = "mixnet_"


class Interrupt(Exception):
    """Raised from on_epoch to stop a run after its first epoch."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits tree at 32 px."""
    return write_digits(tmp_path_factory.mktemp("data") / "digits", size=32)


def settings(digits: Path, out: Path) -> dict:
    """A short run that exercises every piece of state: EMA, dynamic loss scale, dropout, mixing, RandAugment."""
    return {"data_dir": str(digits), "ckpt_save_dir": str(out), "genome": TINY, "width": None, "epoch_size": 2,
            "opt": "momentum", "lr": 0.05, "weight_decay": 4e-5,
            "num_samples": 192, "batch_size": 32, "warmup_epochs": 1, "ema": True, "ema_decay": 0.9,
            "loss_scale_type": "dynamic", "loss_scale": 1024, "drop_overflow_update": True, "mixup": 0.2,
            "cutmix": 1.0, "cutmix_prob": 0.5, "auto_augment": "randaug-m9-mstd0.5", "re_prob": 0.25,
            "keep_checkpoint_max": 1}


def final_checkpoint(out: Path) -> Path:
    """The epoch-2 checkpoint of a run folder."""
    (path,) = [p for p in out.glob(f"{PREFIX}*-2_6.ckpt")]
    return path


def max_difference(a: Path, b: Path) -> float:
    """Largest absolute difference over every tensor the two checkpoints share (all of them)."""
    pa, pb = load(a), load(b)
    tensors = [k for k, v in pa.items() if not isinstance(v, str)]
    assert set(tensors) == {k for k, v in pb.items() if not isinstance(v, str)}
    return max(float(np.abs(pa[k].asnumpy().astype(np.float64) - pb[k].asnumpy()).max()) for k in tensors)


@pytest.fixture(scope="module")
def straight(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """Two epochs in one go."""
    out = tmp_path_factory.mktemp("straight")
    result = train(load_config(RECIPE, settings(digits, out)), progress=False)
    return out, result


def test_checkpoints_best_and_metrics(straight: tuple[Path, object]) -> None:
    out, result = straight
    assert result.epochs == 2 and result.final_top1 is not None and 0 <= result.final_top1 <= 100
    assert result.best_top1 == max(result.best_top1, result.final_top1)
    assert result.images_per_second > 0 and result.compile_seconds > 0
    assert {p.name for p in out.iterdir()} == {"best.ckpt", final_checkpoint(out).name, "metrics.csv"}
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,loss,val_loss,top1,top5") and len(rows) == 3
    assert rows[2].split(",")[:2] == ["2", "12"]
    params = load(final_checkpoint(out))
    meta = read_meta(params)
    assert int(params["epoch_num"].asnumpy()) == 2 and int(params["step_num"].asnumpy()) == 12
    assert meta["genome"].startswith("stem8_head32") and meta["steps_per_epoch"] == 6
    assert {"global_step", "loss_scale.value", "ema.updates", "stem_conv.0.weight"} <= set(params)
    assert any(k.startswith("moments.") for k in params) and any(k.startswith("ema.layers.") for k in params)
    best = load(out / "best.ckpt")
    assert not any(k.startswith(("ema.", "moments.")) for k in best) and "classifier.weight" in best


def test_resume_is_exact(straight: tuple[Path, object], digits: Path, tmp_path: Path) -> None:
    out, result = straight
    interrupted = tmp_path / "interrupted"

    def stop(epoch: int, metrics: dict) -> None:
        assert set(metrics) >= {"top1", "top5", "loss", "val_loss", "lr"}
        raise Interrupt(f"stopped after epoch {epoch + 1}")

    with pytest.raises(Interrupt, match="stopped after epoch 1"):
        train(load_config(RECIPE, settings(digits, interrupted)), on_epoch=stop, progress=False)
    first = tmp_path / "epoch1.ckpt"
    first.write_bytes(next(interrupted.glob(f"{PREFIX}*-1_6.ckpt")).read_bytes())
    resumed = train(load_config(RECIPE, settings(digits, interrupted)), progress=False)
    assert max_difference(final_checkpoint(out), final_checkpoint(interrupted)) < 1e-5
    assert resumed.final_top1 == pytest.approx(result.final_top1)
    assert len((interrupted / "metrics.csv").read_text().splitlines()) == 3
    explicit = tmp_path / "explicit"
    train(load_config(RECIPE, dict(settings(digits, explicit), ckpt_path=str(first), resume_opt=True)),
          progress=False)
    assert max_difference(final_checkpoint(out), final_checkpoint(explicit)) < 1e-5


def test_rerun_of_a_finished_or_different_run(straight: tuple[Path, object], digits: Path) -> None:
    out, result = straight
    again = train(load_config(RECIPE, settings(digits, out)), progress=False)
    assert again.final_top1 == pytest.approx(result.final_top1) and again.best_top1 == result.best_top1
    with pytest.raises(UsageError, match=r"holds a run with other settings \(lr differ\)"):
        train(load_config(RECIPE, dict(settings(digits, out), lr=0.02)), progress=False)


def test_validate_cli_reads_best_checkpoint(straight: tuple[Path, object], digits: Path) -> None:
    out, result = straight
    proc = run_cli("validate", "--config", str(RECIPE), "--data_dir", str(digits), "--ckpt_path",
                   str(out / "best.ckpt"), "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["n"] == 360 and metrics["top1"] == pytest.approx(result.best_top1)
    assert metrics["top5"] >= metrics["top1"]


def test_checkpoint_that_does_not_fit(straight: tuple[Path, object], digits: Path) -> None:
    out, _ = straight
    proc = run_cli("validate", "--config", str(RECIPE), "--data_dir", str(digits), "--ckpt_path",
                   str(out / "best.ckpt"), "--genome", "mixnet_s", "--width", "0.25")
    assert_user_error(proc, "does not fit the network", "missing: ", "shape mismatch: ", "layers.1.convs.")


def test_mindcv_checkpoint_evaluates_as_mindcvs_own_network(digits: Path, tmp_path: Path) -> None:
    """A checkpoint MindCV 0.3.0 saved (its names, optimizer moments, global step) scores what MindCV's
    network holding those weights scores on the same images: the weights loaded, BN statistics included."""
    import mindcv
    net = mindcv.create_model("mixnet_s", num_classes=10)
    randomize(net, seed=5)
    params = [{"name": p.name, "data": p} for p in net.get_parameters()]
    params.append({"name": "moments.classifier.weight", "data": ms.Tensor(np.zeros((10, 1536), np.float32))})
    params.append({"name": "global_step", "data": ms.Tensor(np.array([5], np.int32))})
    path = tmp_path / "mixnet_s-600_1251.ckpt"
    ms.save_checkpoint(params, str(path))
    # split: MindCV's own MixConv computation, so the logits agree to float rounding
    cfg = load_config(RECIPE, {"data_dir": str(digits), "width": None, "batch_size": 120, "mixconv_impl": "split"})
    metrics = evaluate(cfg, path)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        split = scan_split(cfg.data_dir, cfg.val_split, "val_split")
        own = evaluate_network(net, cfg, split, Ranks())
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    assert metrics == {"top1": own["top1"], "top5": own["top5"], "n": 360}


def adamw_state(path: Path) -> tuple[float, float, float, float]:
    """(optimizer steps taken, loss scale, global norm of AdamW's first moment, sqrt of the sum of its second)."""
    params = load(path)
    steps = float(np.log(params["beta1_power"].asnumpy()) / np.log(0.9))
    m = sum(float((params[k].asnumpy().astype(np.float64) ** 2).sum()) for k in params if k.startswith("adam_m."))
    v = sum(float(params[k].asnumpy().astype(np.float64).sum()) for k in params if k.startswith("adam_v."))
    return steps, float(params["loss_scale.value"].asnumpy()), float(np.sqrt(m)), float(np.sqrt(v))


def test_mixed_precision_adamw_clipping(digits: Path, tmp_path: Path) -> None:
    """Float16 training (O3) with AdamW and a global-norm clip far below the gradients' norm.

    AdamW's moments record the gradients it was given: with every gradient clipped to norm c, the
    second moments sum to (1 - 0.999^t) c^2 after t steps and the first moment's norm is at most
    (1 - 0.9^t) c. The same run unclipped must break that, or the check proves nothing.
    """
    clip_value, steps_per_epoch, start_scale = 0.05, 4, 65536.0
    states = {}
    for clip in (True, False):
        out = tmp_path / f"clip_{clip}"
        cfg = load_config(RECIPE, {"data_dir": str(digits), "ckpt_save_dir": str(out), "genome": TINY,
                                   "width": None, "epoch_size": 1, "num_samples": 32 * steps_per_epoch,
                                   "batch_size": 32, "amp_level": "O3", "val_amp_level": "O2",
                                   "loss_scale_type": "dynamic", "loss_scale": start_scale,
                                   "drop_overflow_update": True, "opt": "adamw", "lr": 0.002, "clip_grad": clip,
                                   "clip_value": clip_value})
        result = train(cfg, progress=False)
        assert result.best_ckpt is not None and 0 <= result.final_top1 <= 100
        row = (out / "metrics.csv").read_text().splitlines()[1].split(",")
        assert np.isfinite(float(row[3])) and np.isfinite(float(row[4]))  # training and validation loss
        ckpt = next(out.glob(f"{PREFIX}*-1_{steps_per_epoch}.ckpt"))
        states[clip] = adamw_state(ckpt), load(ckpt)["classifier.weight"].asnumpy()
    (steps, scale, m_norm, v_root), weights = states[True]
    # every step either updated (finite float16 gradients) or was dropped and halved the loss scale
    assert steps >= 1 and scale == start_scale / 2 ** round(steps_per_epoch - steps)
    assert v_root == pytest.approx(np.sqrt(1 - 0.999 ** steps) * clip_value, rel=1e-3)
    assert m_norm <= (1 - 0.9 ** steps) * clip_value * (1 + 1e-3)
    (free_steps, _, free_m, free_v), free_weights = states[False]
    assert free_v > 2 * np.sqrt(1 - 0.999 ** free_steps) * clip_value and free_m > m_norm
    assert np.abs(weights - free_weights).max() > 0


def test_train_cli_skips_a_corrupt_image(digits: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for split, count in (("train", 8), ("val", 3)):
        for folder in sorted((digits / split).iterdir()):
            (data / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:count]:
                (data / split / folder.name / image.name).write_bytes(image.read_bytes())
    (data / "train" / "7" / "scan_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out = tmp_path / "out"
    proc = run_cli("train", "--config", str(RECIPE), "--data_dir", str(data), "--genome", TINY, "--width", "null",
                   "--epoch_size", "1", "--batch_size", "32", "--ckpt_save_dir", str(out), "--log_interval", "1",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["epochs"] == 1 and result["best_ckpt"] == str(out / "best.ckpt") and result["skipped_images"] == 1
    assert "epoch 1/1 step 2/2 loss" in proc.stderr and "val top-1" in proc.stderr
    assert "skipped 1 unreadable training images" in proc.stderr
    assert (out / "metrics.csv").read_text().splitlines()[1].split(",")[9] == "1"


def test_distribute_needs_a_launcher(digits: Path) -> None:
    proc = run_cli("train", "--config", str(RECIPE), "--data_dir", str(digits), "--distribute")
    assert_user_error(proc, "distribute: True needs a launcher", "msrun")
