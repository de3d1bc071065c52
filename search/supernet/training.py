"""Training a supernet with the search config's data and proxy recipe: one sampled genome per step.

Data-parallel (``supernet.overrides: {distribute: True}`` under msrun), every rank trains the genome
its sampler derives from the step, and the ranks check that they agree before every step; at the end
they check that they hold the same weights. Rank 0 alone writes the supernet's folder. BatchNorm
normalizes with each rank's own batch statistics (MindSpore's SyncBatchNorm is Ascend-only, and the
C++ kernels compute BatchNorm and activation in one call); the trainer averages the moving statistics
over the ranks after every epoch, and scoring recalibrates them for each genome anyway.

The trainer does not validate a supernet: its moving BatchNorm statistics are a mixture over the
genomes trained, and with them any sub-network scores near chance. What a supernet is worth is its
skeleton's score with BatchNorm recalibrated, as a search scores it (:func:`trained_line`).
"""

from __future__ import annotations

from typing import Any

from mindspore import nn

from mixnet.supernet import Supernet
from space.genome import Genome
from space.search_space import SearchSpace
from trainer.distributed import Ranks, check_same, setup

from ..config import SearchConfig
from ..proxy_data import plan_proxy_data, prepare_proxy_data, proxy_data_of
from ..recipes import on_proxy_data, proxy_train_config
from ..sections import SupernetSection
from .sampling import PathSampler
from .scoring import SPACE_FILE, check_space, write_space


class SupernetNetworks:
    """What ``trainer.train`` trains for a supernet: the supernet of the space at the recipe's width and
    classes (holding the weights ``section`` says), set to the sampler's genome before each step, and
    not validated (``best.ckpt`` is the last epoch's weights). On several ``ranks``, every step checks
    that all ranks chose the same genome."""

    validates = False

    def __init__(self, space: SearchSpace, sampler: PathSampler, section: SupernetSection,
                 ranks: Ranks = Ranks()) -> None:
        self.space, self.sampler, self.section, self.ranks = space, sampler, section, ranks

    def build(self, genome: Genome, cfg: Any) -> Supernet:
        """A freshly initialized supernet for networks like ``genome`` (the skeleton as the recipe trains it),
        computing with the recipe's MixConv implementation."""
        return Supernet(self.section.spec_of(self.space, genome.width, genome.num_classes), impl=cfg.mixconv_impl)

    def before_step(self, net: nn.Cell, step: int) -> None:
        """Select the genome of ``step``; UsageError when the ranks chose different ones."""
        genome = self.sampler.genome(step)
        check_same(f"{step} {genome.to_string()}", self.ranks, f"the genome of supernet step {step}")
        net.select(genome)

    def before_validation(self, net: nn.Cell) -> None:
        """The skeleton's sub-network, for a validation made all the same (``validates`` asks for none)."""
        net.select(self.space.skeleton)


def supernet_recipe(cfg: SearchConfig) -> Any:
    """The proxy's recipe with ``supernet.overrides``, writing to the supernet folder (checked)."""
    recipe = proxy_train_config(cfg)
    return recipe.replace(**cfg.supernet.overrides, ckpt_save_dir=str(cfg.supernet.dir))


def train_supernet(cfg: SearchConfig, progress: bool = True, train_fn: Any = None) -> Any:
    """Train (or resume) the supernet of ``cfg``'s space on its proxy split; returns the TrainResult.

    Checkpoints, ``best.ckpt`` (the last epoch's weights) and ``metrics.csv`` go to ``supernet.dir``; a
    re-run resumes from the newest checkpoint there, as the trainer does. With ``distribute`` (under
    msrun) rank 0 writes them, and every rank must end with the same weights.
    """
    space = SearchSpace.from_yaml(cfg.space)
    cfg.supernet.spec_of(space)
    recipe = supernet_recipe(cfg)
    ranks = setup(recipe)
    plan = plan_proxy_data(cfg.data)
    proxy = proxy_data_of(plan, cfg.out_dir)
    recipe = on_proxy_data(recipe, proxy)
    if (cfg.supernet.dir / SPACE_FILE).is_file():
        check_space(space, cfg.supernet.dir, cfg.supernet)   # resuming: the same supernet
    prepare_proxy_data(cfg.data, cfg.out_dir, plan)
    if ranks.is_main:
        write_space(space, cfg.supernet.dir, cfg.supernet)
    sampler = PathSampler(space, cfg.supernet.sampling, cfg.supernet.sandwich, int(recipe.seed))
    if train_fn is None:
        from trainer import train as train_fn
    result = train_fn(recipe, space.skeleton, progress=progress, save_checkpoints=True,
                      networks=SupernetNetworks(space, sampler, cfg.supernet, ranks))
    check_same(result.weights_digest, ranks, "the supernet's final weights")
    return result


def _epoch_rows(cfg: SearchConfig) -> list[dict[str, str]]:
    """The rows of ``cfg``'s supernet's ``supernet.dir/metrics.csv``, one per trained epoch."""
    from trainer.records import METRICS_NAME, MetricsLog
    return MetricsLog(cfg.supernet.dir / METRICS_NAME, int(supernet_recipe(cfg).epoch_size)).rows


def trained_epochs(cfg: SearchConfig) -> int:
    """How many epochs of ``cfg``'s supernet are trained (recorded in ``supernet.dir/metrics.csv``)."""
    return len(_epoch_rows(cfg))


def training_seconds(cfg: SearchConfig) -> float:
    """Seconds the trained epochs of ``cfg``'s supernet took (``supernet.dir/metrics.csv``), whenever and in how
    many runs they were trained."""
    return sum(float(row["train_seconds"] or 0) for row in _epoch_rows(cfg))


def trained_line(cfg: SearchConfig, result: Any) -> str:
    """One line on a supernet training ``result``: its time and throughput, and its skeleton's (MixNet-S's)
    held-out top-1 with BatchNorm recalibrated, scored as a search scores a trial."""
    from ..proxy_data import plan_proxy_data, proxy_data_of
    from .scoring import scorer_for
    scorer = scorer_for(cfg, proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir), supernet_recipe(cfg))
    top1 = 100 * scorer.score(SearchSpace.from_yaml(cfg.space).skeleton)
    epochs = f"{result.epochs} epoch{'' if result.epochs == 1 else 's'}"
    return (f"supernet trained in {result.seconds:.0f} s ({epochs}, {result.images_per_second:.0f} img/s); MixNet-S "
            f"sub-network scores {top1:.2f}% on {scorer.scored} held-out images (BatchNorm recalibrated); "
            f"{cfg.supernet.dir}")
