"""Which genome each supernet training step trains: uniform or strictly fair choices, and the sandwich rule.

``fair`` is FairNAS's strict fairness, per consecutive steps: each layer's choices come in a fresh
random order every ``len(choices)`` steps, so over that many steps every choice of every layer is
trained exactly once. ``sandwich`` (BigNAS) makes the first of every four steps the widest and the
second the narrowest expansion everywhere; the other two steps follow the rule. Choices depend only
on the seed and the step (a generator seeded per step, or per block of steps for ``fair``), so a
resumed run trains the same genomes, and every rank of a data-parallel run draws the same genome at
each step without talking to the others (``training.SupernetNetworks`` checks that they agree).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from space.basics.errors import UsageError
from space.genome import Genome
from space.search_space import SearchSpace

RULES = ("uniform", "fair")
SANDWICH_PERIOD = 4


@dataclass(frozen=True)
class PathSampler:
    """The genome of each training step of a supernet of ``space``."""

    space: SearchSpace
    rule: str
    sandwich: bool
    seed: int

    def __post_init__(self) -> None:
        """Raise UsageError for an unknown rule."""
        if self.rule not in RULES:
            raise UsageError(f"supernet sampling '{self.rule}' - allowed: {', '.join(RULES)}")

    def genome(self, step: int) -> Genome:
        """The genome trained at ``step`` (counted over the whole run)."""
        return self.space.decode({d.name: self._choice(i, d.field, d.choices, step)
                                  for i, d in enumerate(self.space.dimensions)})

    def _choice(self, index: int, field: str, choices: tuple, step: int) -> object:
        """Dimension ``index``'s choice at ``step``."""
        if self.sandwich and field == "expand_ratio" and step % SANDWICH_PERIOD < 2:
            return max(choices) if step % SANDWICH_PERIOD == 0 else min(choices)
        if self.rule == "uniform":
            return random.Random(f"{self.seed}:{index}:{step}").choice(choices)
        block, place = divmod(step, len(choices))
        order = list(choices)
        random.Random(f"{self.seed}:{index}:block{block}").shuffle(order)
        return order[place]
