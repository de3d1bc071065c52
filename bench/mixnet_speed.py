"""MixNet speed, ours against MindCV's, side by side in one run on this machine.

Measures, in MindSpore graph mode on the CPU: inference at batch 1 and batch 32, training images/s
at batch 32 (SGD with momentum, cross-entropy), and the first-call time (compile included) of each.
Calls alternate between the two networks and every figure is a median, so load from other
processes hits both alike. Both networks get MindCV's weights, and the largest logit difference is
reported (relative to the largest logit) as a check that the same function is measured. ONNX Runtime (on MindCV's ONNX export) and
timm/PyTorch eager are added when installed, never required.

    python bench/mixnet_speed.py                 # full run at 224 (slow: MindCV trains at ~1 img/s)
    python bench/mixnet_speed.py --quick         # fewer repeats and training steps
    python bench/mixnet_speed.py --json          # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixnet.quiet import quiet_mindspore  # noqa: E402

quiet_mindspore()

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
from mindspore import nn  # noqa: E402


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mixnet_s", help="mixnet_s, mixnet_m or mixnet_l")
    p.add_argument("--impl", default=None,
                   help="our mixconv_impl: auto, split, padded, kernels; fused and custom are accepted as padded and "
                        "kernels (default: create_model's default)")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--batch", type=int, default=32, help="batch for the batch inference and training rows")
    p.add_argument("--repeats", type=int, default=10, help="timed inference calls per network and batch")
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps per network")
    p.add_argument("--quick", action="store_true", help="3 inference repeats and 1 timed training step")
    p.add_argument("--no-batch-inference", action="store_true", help="skip inference at --batch")
    p.add_argument("--no-train", action="store_true", help="skip training")
    p.add_argument("--no-extras", action="store_true", help="skip ONNX Runtime and PyTorch even if installed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.train_steps = min(args.repeats, 3), min(args.train_steps, 1)
    return args


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call takes (the result is forced to the host)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each run, calling them in turn ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(timed(run))
    return {name: float(np.median(t)) for name, t in times.items()}


def randomize(net: nn.Cell, seed: int = 0) -> None:
    """Weights ~ N(0, 2/fan_in), BatchNorm statistics and affine terms spread around 1 and 0, so that
    activations stay O(1) through the network (MindCV's own init shrinks them to ~1e-15)."""
    rng = np.random.default_rng(seed)
    for name, p in net.parameters_and_names():
        if name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, p.shape)
        elif name.endswith(("moving_mean", "beta", "bias")):
            value = rng.normal(0, 0.1, p.shape)
        else:
            value = rng.normal(0, np.sqrt(2.0 / max(1, int(np.prod(p.shape[1:])))), p.shape)
        p.set_data(ms.Tensor(value.astype(np.float32)))


def build_networks(model: str, impl: "str | None") -> tuple[nn.Cell, nn.Cell, str]:
    """Our network (``impl``, or the default implementation when None) and MindCV's with the same
    random weights; the implementation ours resolved to."""
    import mindcv

    from mixnet import create_model

    ref = mindcv.create_model(model)
    randomize(ref)
    ours = create_model(model, se_act="relu", **({"mixconv_impl": impl} if impl else {}))
    ms.load_param_into_net(ours, ref.parameters_dict(), strict_load=True)
    return ours, ref, ours.mixconv_impl


def images(batch: int, resolution: int, seed: int = 0) -> ms.Tensor:
    """A fixed random image batch."""
    rng = np.random.default_rng(seed)
    return ms.Tensor(rng.standard_normal((batch, 3, resolution, resolution), dtype=np.float32))


def inference(nets: dict[str, nn.Cell], x: ms.Tensor, repeats: int) -> tuple[dict, dict, dict]:
    """(first-call seconds, median seconds, logits) per network, at inference."""
    for net in nets.values():
        net.set_train(False)
    first = {name: timed(lambda n=net: n(x).asnumpy()) for name, net in nets.items()}
    logits = {name: net(x).asnumpy() for name, net in nets.items()}
    runs = {name: (lambda n=net: n(x).asnumpy()) for name, net in nets.items()}
    return first, interleaved(runs, repeats), logits


def train_step(net: nn.Cell) -> nn.Cell:
    """One SGD-with-momentum step on softmax cross-entropy, as a cell."""
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    step.set_train(True)
    return step


def training(nets: dict[str, nn.Cell], batch: int, resolution: int, steps: int) -> tuple[dict, dict]:
    """(first-step seconds, median images/s) per network."""
    x = images(batch, resolution, seed=1)
    y = ms.Tensor(np.random.default_rng(2).integers(0, 1000, batch).astype(np.int32))
    cells = {name: train_step(net) for name, net in nets.items()}
    first = {name: timed(lambda c=cell: c(x, y).asnumpy()) for name, cell in cells.items()}
    seconds = interleaved({name: (lambda c=cell: c(x, y).asnumpy()) for name, cell in cells.items()}, steps)
    return first, {name: batch / s for name, s in seconds.items()}


def onnxruntime_inference(ref: nn.Cell, resolution: int, repeats: int) -> "float | None":
    """Median seconds of ONNX Runtime at batch 1 on MindCV's ONNX export, or None if unavailable."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x = images(1, resolution)
    ref.set_train(False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mixnet")
        ms.export(ref, x, file_name=path, file_format="ONNX")
        session = ort.InferenceSession(path + ".onnx", providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.asnumpy()}
    session.run(None, feed)
    return interleaved({"ort": lambda: session.run(None, feed)}, repeats)["ort"]


def torch_numbers(model: str, resolution: int, batch: int, repeats: int, steps: int) -> "dict | None":
    """timm/PyTorch eager: batch-1 inference seconds and training images/s, or None if not installed."""
    try:
        import timm
        import torch
    except ImportError:
        return None
    net = timm.create_model(model, pretrained=False)
    net.eval()
    x1 = torch.randn(1, 3, resolution, resolution)
    with torch.no_grad():
        net(x1)
        infer = interleaved({"t": lambda: net(x1)}, repeats)["t"]
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    xb, yb = torch.randn(batch, 3, resolution, resolution), torch.randint(0, 1000, (batch,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()

    step()
    train = interleaved({"t": step}, steps)["t"]
    return {"inference_b1_ms": infer * 1e3, "train_images_per_s": batch / train}


def ratio_row(metric: str, ours: float, mindcv: float, unit: str, higher_is_better: bool) -> dict:
    """One result row: values, ours / MindCV, and how many times better ours is."""
    ratio = ours / mindcv
    return {"metric": metric, "unit": unit, "ours": ours, "mindcv": mindcv, "ratio": ratio,
            "speedup": ratio if higher_is_better else 1.0 / ratio}


def run(args: argparse.Namespace) -> dict:
    """Every measurement; the report as a dict."""
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    ours, ref, resolved = build_networks(args.model, args.impl)
    nets = {"ours": ours, "mindcv": ref}
    rows = []
    first, median, logits = inference(nets, images(1, args.resolution), args.repeats)
    scale = float(np.abs(logits["mindcv"]).max())
    max_diff = float(np.abs(logits["ours"] - logits["mindcv"]).max())
    rows.append(ratio_row("inference batch 1", median["ours"] * 1e3, median["mindcv"] * 1e3, "ms", False))
    rows.append(ratio_row("first call batch 1 (compile)", first["ours"], first["mindcv"], "s", False))
    if not args.no_batch_inference:
        first_b, median_b, _ = inference(nets, images(args.batch, args.resolution), args.repeats)
        rows.append(ratio_row(f"inference batch {args.batch}", median_b["ours"] * 1e3, median_b["mindcv"] * 1e3,
                              "ms", False))
    if not args.no_train:
        first_t, speed = training(nets, args.batch, args.resolution, args.train_steps)
        rows.append(ratio_row(f"training batch {args.batch}", speed["ours"], speed["mindcv"], "images/s", True))
        rows.append(ratio_row("first training step (compile)", first_t["ours"], first_t["mindcv"], "s", False))
    extras = {}
    if not args.no_extras:
        ort_s = onnxruntime_inference(ref, args.resolution, args.repeats)
        if ort_s is not None:
            extras["onnxruntime_mindcv_export_inference_b1_ms"] = ort_s * 1e3
        torch_res = torch_numbers(args.model, args.resolution, args.batch, args.repeats, args.train_steps)
        if torch_res is not None:
            extras["timm_pytorch_eager"] = torch_res
    return {"model": args.model, "impl": resolved, "resolution": args.resolution, "batch": args.batch,
            "repeats": args.repeats, "train_steps": args.train_steps, "mindspore": ms.__version__,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "max_logit_difference": max_diff, "logit_scale": scale, "rows": rows, "extras": extras}


def print_table(report: dict) -> None:
    """The report as a plain-text table."""
    print(f"{report['model']} at {report['resolution']}x{report['resolution']}, MindSpore {report['mindspore']} "
          f"graph mode, CPU ({report['machine']}); ours: mixconv_impl={report['impl']}")
    print(f"medians of {report['repeats']} inference calls / {report['train_steps']} training steps, interleaved")
    print(f"{'metric':34} {'ours':>12} {'MindCV':>12} {'ours/MindCV':>12} {'speedup':>9}")
    for r in report["rows"]:
        print(f"{r['metric'] + ' (' + r['unit'] + ')':34} {r['ours']:12.2f} {r['mindcv']:12.2f} {r['ratio']:12.3f} "
              f"{r['speedup']:8.1f}x")
    print(f"max |logit difference| / max |logit|: {report['max_logit_difference'] / report['logit_scale']:.1e} "
          f"(float rounding; the random network amplifies it)")
    for key, value in report["extras"].items():
        print(f"{key}: {json.dumps(value) if isinstance(value, dict) else f'{value:.2f}'}")


def main(argv: "list[str] | None" = None) -> None:
    """Run the benchmark and print the table or JSON."""
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
