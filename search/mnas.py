"""MnasNet's single-objective reward: ACC x (LAT / T)^w."""

from __future__ import annotations

SOFT_W = -0.07


def mnas_reward(accuracy: float, latency_ms: float, target_ms: float, w: float = SOFT_W,
                hard: bool = False) -> float:
    """The reward of an architecture.

    Soft (MnasNet's default): alpha = beta = ``w`` (-0.07). Hard: alpha = 0, beta = -1, so a
    model within the target is scored by accuracy alone and one over it is penalized sharply.
    """
    alpha, beta = (0.0, -1.0) if hard else (w, w)
    exponent = alpha if latency_ms <= target_ms else beta
    return accuracy * (latency_ms / target_ms) ** exponent
