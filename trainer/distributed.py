"""Data-parallel setup under a launcher (msrun), and sums across ranks."""

from __future__ import annotations

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
                         "--local_worker_num N ... (or set --distribute False)")
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


def all_sum(values: "Sequence[float] | np.ndarray", ranks: Ranks) -> np.ndarray:
    """Element-wise sum of ``values`` over all ranks (the values themselves on one rank)."""
    array = np.asarray(values, np.float32)
    if ranks.world == 1:
        return array.astype(np.float64)
    import mindspore as ms
    from mindspore import ops
    total = ops.AllReduce()(ms.Tensor(array))
    return total.asnumpy().astype(np.float64)
