"""Rank agreement between two scorings of the same items: Kendall's tau-b, Spearman's rho, top overlap."""

from __future__ import annotations

import math

import numpy as np


def kendall_tau(x: "list[float]", y: "list[float]") -> float:
    """Kendall's tau-b rank correlation of two equally long sequences (ties handled)."""
    return float(kendall_taus(np.asarray([x], dtype=float), np.asarray([y], dtype=float))[0])


def kendall_taus(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row of ``x`` against the same row of ``y`` (0 where a row is constant):
    concordant minus discordant pairs over the square root of the pairs untied in x times those in y."""
    upper = np.triu_indices(x.shape[1], k=1)
    sx = np.sign(x[:, :, None] - x[:, None, :])[:, upper[0], upper[1]]
    sy = np.sign(y[:, :, None] - y[:, None, :])[:, upper[0], upper[1]]
    denom = np.sqrt(np.count_nonzero(sx, axis=1) * np.count_nonzero(sy, axis=1).astype(float))
    return np.divide((sx * sy).sum(axis=1), denom, out=np.zeros(len(x)), where=denom > 0)


def average_ranks(values: "list[float]") -> np.ndarray:
    """Ranks 1..n of ``values`` (ties share their mean rank)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[order[j + 1]] == values[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman_rho(x: "list[float]", y: "list[float]") -> float:
    """Spearman's rank correlation (Pearson's r of the average ranks); 0 when either is constant."""
    rx, ry = average_ranks(x), average_ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))


def top_overlap(x: "list[float]", y: "list[float]", share: float = 1 / 3) -> float:
    """Share of the top ``share`` (at least one item) by ``x`` that is also in the top by ``y``."""
    k = max(1, math.ceil(len(x) * share))
    top_x = set(np.argsort(-np.asarray(x, dtype=float), kind="mergesort")[:k])
    top_y = set(np.argsort(-np.asarray(y, dtype=float), kind="mergesort")[:k])
    return len(top_x & top_y) / k
