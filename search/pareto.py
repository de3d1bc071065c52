"""Pareto dominance among points whose every coordinate is minimized."""

from __future__ import annotations

import numpy as np


def non_domination_ranks(points: "np.ndarray | list") -> np.ndarray:
    """Each point's Pareto rank: 0 for the non-dominated points, 1 for those non-dominated once
    rank 0 is set aside, and so on (every coordinate minimized)."""
    points = np.asarray(points, dtype=float).reshape(len(points), -1)
    ranks = np.full(len(points), -1)
    remaining = np.arange(len(points))
    rank = 0
    while remaining.size:
        sub = points[remaining]
        dominated = np.array([np.any(np.all(sub <= p, axis=1) & np.any(sub < p, axis=1)) for p in sub])
        ranks[remaining[~dominated]] = rank
        remaining = remaining[dominated]
        rank += 1
    return ranks
