"""MindCV 0.3.0 checkpoints load into our MixNet by name, and the logits agree in graph mode."""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from mixnet import create_model
from mixnet.checkpoint import CheckpointMismatch, load_weights


def randomize(net: ms.nn.Cell, seed: int) -> None:
    """Give every parameter (BN statistics included) non-trivial random values."""
    rng = np.random.RandomState(seed)
    for name, p in net.parameters_and_names():
        shape = p.shape
        if name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("moving_mean", "beta", "bias")):
            value = rng.normal(0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        p.set_data(ms.Tensor(value.astype(np.float32)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mixnet_s", "mixnet_m", "mixnet_l"])
def test_mindcv_checkpoint_loads_and_logits_agree(name: str, tmp_path: Path) -> None:
    import mindcv
    ref = mindcv.create_model(name)
    randomize(ref, seed=3)
    ref.set_train(False)
    path = tmp_path / f"{name}.ckpt"
    ms.save_checkpoint(ref, str(path))

    # split is MindCV's own computation, the one that can match its logits to 1e-4 (see the README's Speed)
    net = create_model(name, se_act="relu", mixconv_impl="split")
    net.set_train(False)
    saved = set(ms.load_checkpoint(str(path)))
    assert {p.name for p in net.get_parameters()} == saved  # no missing or unexpected name
    load_weights(net, path)
    x = ms.Tensor(np.random.RandomState(0).normal(size=(2, 3, 64, 64)).astype(np.float32))
    want, got = ref(x).asnumpy(), net(x).asnumpy()
    scale = np.abs(want).max()
    assert scale > 1e-2
    assert np.abs(want - got).max() <= 1e-4 * scale


def test_checkpoint_that_does_not_fit_lists_names_and_shapes(tmp_path: Path) -> None:
    small = create_model("mixnet_s", num_classes=10, width=0.5, mixconv_impl="split")
    path = tmp_path / "s.ckpt"
    ms.save_checkpoint(small, str(path))
    with pytest.raises(CheckpointMismatch) as err:
        load_weights(create_model("mixnet_s", num_classes=10, mixconv_impl="split"), path)
    assert "shape mismatch: " in str(err.value) and "stem_conv.0.weight (8, 3, 3, 3) vs (16, 3, 3, 3)" in str(err.value)
    with pytest.raises(CheckpointMismatch) as err:
        load_weights(create_model("mixnet_m", num_classes=10, width=0.5, mixconv_impl="split"), path)
    assert "missing: " in str(err.value) and "unexpected: " in str(err.value)
