"""Data-parallel setup under a launcher (msrun), sums across ranks, and checks that ranks agree."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from space.basics.errors import UsageError

LAUNCHER_VARIABLES = ("MS_ROLE", "RANK_TABLE_FILE", "MINDSPORE_HCCL_CONFIG_PATH", "OMPI_COMM_WORLD_SIZE")
_initialized = {"done": False}


@dataclass(frozen=True)
class Ranks:
    """This process's rank and the number of ranks."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes checkpoints and logs."""
        return self.rank == 0


def setup(cfg: Any) -> Ranks:
    """Single process unless ``cfg.distribute``; then init the group and data-parallel mode."""
    if not cfg.distribute:
        return Ranks()
    if not any(os.environ.get(name) for name in LAUNCHER_VARIABLES):
        raise UsageError("distribute: True needs a launcher - run under msrun --worker_num N "
                         "--local_worker_num N ... (or set distribute: False)")
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init
    if not _initialized["done"]:
        init()
        _initialized["done"] = True
    world = get_group_size()
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=world)
    return Ranks(get_rank(), world)


def current_ranks(cfg: Any) -> Ranks:
    """The ranks of a run of ``cfg`` once :func:`setup` has run (one rank unless ``cfg.distribute``)."""
    if not cfg.distribute or not _initialized["done"]:
        return Ranks()
    from mindspore.communication import get_group_size, get_rank
    return Ranks(get_rank(), get_group_size())


def all_sum(values: "Sequence[float] | np.ndarray", ranks: Ranks) -> np.ndarray:
    """Element-wise sum of ``values`` over all ranks (the values themselves on one rank)."""
    array = np.asarray(values, np.float32)
    if ranks.world == 1:
        return array.astype(np.float64)
    import mindspore as ms
    from mindspore import ops
    total = ops.AllReduce()(ms.Tensor(array))
    return total.asnumpy().astype(np.float64)


def check_same(text: str, ranks: Ranks, what: str) -> None:
    """Raise UsageError unless every rank passes the same ``text`` (compared by digest; one AllGather)."""
    if ranks.world == 1:
        return
    import mindspore as ms
    from mindspore import ops
    digest = np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], np.int32)
    held = ops.AllGather()(ms.Tensor(digest)).asnumpy().reshape(ranks.world, -1)
    if (held != held[0]).any():
        shown = ", ".join(f"rank {r} {row.tobytes().hex()}" for r, row in enumerate(held))
        raise UsageError(f"the ranks disagree on {what} (digests: {shown}) - every rank must run the same "
                         "code and config")
