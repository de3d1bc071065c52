"""Per-layer costs of MixNet's parts, one implementation against another, block by block.

For every block of the network (MindSpore graph mode, CPU) it times, on that block's input shape:
MixConv (split / padded / kernels), the grouped 1x1 expansion with its BatchNorm (split + concat,
one grouped conv when the split is even, and the C++ kernels: at inference the pointwise kernel
with BatchNorm folded in, in training the grouped 1x1 kernel and the BatchNorm kernel), the SE
module (split / kernels) and swish (nn.SiLU / x * sigmoid(x) / C++ kernel).
Forward only by default (inference), or forward + backward with ``--train``. Each figure is the
median of ``--repeats`` interleaved calls, in milliseconds.

    python bench/mixnet_layers.py --batch 1                 # inference, MixNet-S at 224
    python bench/mixnet_layers.py --batch 8 --train --parts mixconv,se,swish
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixnet.quiet import quiet_mindspore  # noqa: E402

quiet_mindspore()

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
from mindspore import Tensor, nn, ops  # noqa: E402

from bench.mixnet_speed import interleaved  # noqa: E402
from mixnet.factory import apply_overrides  # noqa: E402
from mixnet.kernels import ops as kops  # noqa: E402
from mixnet.layers import GroupedConv2d, MixedDepthwiseConv, SqueezeExcite, batch_norm, bn_params  # noqa: E402
from mixnet.mixconv import IMPL_NAMES, implementation  # noqa: E402
from mixnet.mixconv.kernels import Swish, train_batch_norm_act  # noqa: E402
from space import parse_genome  # noqa: E402
from space.genome import LayerSpec  # noqa: E402

PARTS = ("mixconv", "pointwise", "se", "swish")


class OneGroupedConv(nn.Cell):
    """A grouped 1x1 conv as one ``ops.conv2d(groups=G)`` call over the groups' concatenated weights."""

    def __init__(self, conv: GroupedConv2d) -> None:
        super().__init__()
        self.conv = conv

    def construct(self, x: Tensor) -> Tensor:
        return ops.conv2d(x, ops.concat(self.conv.weights(), axis=0), groups=self.conv.groups)


class Pointwise(nn.Cell):
    """The C++ inference kernel: grouped 1x1 conv + folded BatchNorm."""

    def __init__(self, conv: GroupedConv2d, channels: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = batch_norm(channels, 0.9, 1e-5)
        self.meta = kops.pointwise_meta("none", 1e-5)
        self.op = kops.pointwise(conv.groups)

    def construct(self, x: Tensor) -> Tensor:
        return self.op(self.meta, x, *self.conv.weights(), *bn_params(self.bn))


class ConvThenBn(nn.Cell):
    """MindSpore: grouped conv (as given) then BatchNorm, the unfused counterpart of Pointwise."""

    def __init__(self, conv: nn.Cell, channels: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = batch_norm(channels, 0.9, 1e-5)

    def construct(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class ConvThenKernelBn(nn.Cell):
    """Training: grouped conv (as given) then BatchNorm on the C++ kernel."""

    def __init__(self, conv: GroupedConv2d, channels: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = batch_norm(channels, 0.9, 1e-5)
        self.identity = nn.Identity()
        self.meta = kops.batch_norm_meta("none", 1e-5)
        self.op = kops.batch_norm_act()

    def construct(self, x: Tensor) -> Tensor:
        return train_batch_norm_act(self.op, self.meta, self.bn, self.identity, self.conv(x))


class XSigmoid(nn.Cell):
    """x * sigmoid(x) as two MindSpore ops (MindCV's Swish)."""

    def construct(self, x: Tensor) -> Tensor:
        return x * ops.sigmoid(x)


def variants(part: str, layer: LayerSpec, hw: int, train: bool) -> "dict[str, tuple[nn.Cell, tuple]] | None":
    """Named cells to compare for one part of one block (input ``hw`` x ``hw``), with input shapes;
    with ``train``, the training counterparts of the inference-only kernels."""
    mid = layer.mid_channels
    split, kernels = implementation("split"), implementation("kernels")
    if part == "mixconv":
        shape = (mid, hw, hw)
        return {name: (MixedDepthwiseConv(mid, layer.kernel_sizes, layer.stride, implementation(name)), shape)
                for name in IMPL_NAMES}
    if part == "pointwise":
        if layer.expand_ratio == 1:
            return None
        conv = GroupedConv2d(layer.in_channels, mid, layer.expand_groups, split)
        shape = (layer.in_channels, hw, hw)
        if train:
            fast = ConvThenKernelBn(GroupedConv2d(layer.in_channels, mid, layer.expand_groups, kernels), mid)
        else:
            fast = Pointwise(conv, mid)
        out = {"split+concat, BN": (ConvThenBn(conv, mid), shape),
               ("kernels (C++ conv, C++ BN)" if train else "kernels (BN folded)"): (fast, shape)}
        if layer.in_channels % layer.expand_groups == 0 and mid % layer.expand_groups == 0 and layer.expand_groups > 1:
            out["one grouped conv, BN"] = (ConvThenBn(OneGroupedConv(conv), mid), shape)
        return out
    out_hw = (hw - 1) // layer.stride + 1
    shape = (mid, out_hw, out_hw)
    if part == "se":
        if not layer.se_channels:
            return None
        return {impl.name: (SqueezeExcite(mid, layer.se_channels, layer.se_act, impl), shape)
                for impl in (split, kernels)}
    if layer.act != "swish":
        return None
    return {"nn.SiLU": (nn.SiLU(), shape), "x*sigmoid(x)": (XSigmoid(), shape), "kernels": (Swish(), shape)}


def runner(cell: nn.Cell, x: Tensor, train: bool) -> Callable[[], object]:
    """A call of the cell (forward, or forward + backward with respect to input and parameters)."""
    if not train:
        cell.set_train(False)
        return lambda: cell(x).asnumpy()
    cell.set_train(True)
    if not cell.trainable_params():
        grad_x = ms.grad(cell, grad_position=0)
        return lambda: grad_x(x).asnumpy()
    grad = ms.grad(cell, grad_position=0, weights=cell.trainable_params())
    return lambda: grad(x)[0].asnumpy()


def measure(model: str, batch: int, resolution: int, train: bool, parts: tuple[str, ...], repeats: int) -> list[dict]:
    """One row per (block, part): median milliseconds per variant."""
    genome = apply_overrides(parse_genome(model), se_act="relu")
    rows = []
    spatial = resolution // 2
    for layer in genome.layers():
        for part in parts:
            found = variants(part, layer, spatial, train)
            if not found:
                continue
            runs = {}
            for name, (cell, shape) in found.items():
                x = Tensor(np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32))
                runs[name] = runner(cell, x, train)
                runs[name]()
            ms_per = {name: seconds * 1e3 for name, seconds in interleaved(runs, repeats).items()}
            rows.append({"block": layer.index, "part": part, "kernels": ".".join(map(str, layer.kernel_sizes)),
                         "mid": layer.mid_channels, "hw": spatial, "ms": ms_per})
        spatial = (spatial - 1) // layer.stride + 1
    return rows


def main(argv: "list[str] | None" = None) -> None:
    """Measure and print a table (or JSON)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mixnet_s")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--train", action="store_true", help="time forward + backward")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    parts = tuple(s for s in args.parts.split(",") if s)
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) {', '.join(sorted(unknown))} - allowed: {', '.join(PARTS)}")
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    rows = measure(args.model, args.batch, args.resolution, args.train, parts, args.repeats)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    mode = "forward + backward" if args.train else "forward"
    print(f"{args.model}, batch {args.batch}, {args.resolution}x{args.resolution}, {mode}, ms (median of {args.repeats})")
    for r in rows:
        cells = "  ".join(f"{name} {value:8.2f}" for name, value in r["ms"].items())
        print(f"block {r['block']:2d} {r['part']:9} k{r['kernels']:10} {r['mid']:5d}ch {r['hw']:3d}px  {cells}")
    totals: dict[str, dict[str, float]] = {}
    for r in rows:
        for name, value in r["ms"].items():
            totals.setdefault(r["part"], {}).setdefault(name, 0.0)
            totals[r["part"]][name] += value
    for part, sums in totals.items():
        print(f"total {part:9} " + "  ".join(f"{name} {value:8.2f}" for name, value in sums.items()))


if __name__ == "__main__":
    main()
