"""How much an accuracy measurement can be trusted: standard errors, paired comparisons and the
fidelity of a proxy (seed-to-seed agreement, noise against signal, agreement with a reference)."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from .ranking import kendall_tau, kendall_taus, spearman_rho, top_overlap

BEYOND_NOISE_Z = 2.0
TAU_INTERVAL_LEVEL = 0.9
BOOTSTRAP_RESAMPLES = 2000


def binomial_se(accuracy: float, n_images: int) -> float:
    """Standard error of a top-1 fraction scored on ``n_images`` held-out images."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / n_images) if n_images else math.nan


def accuracy_se(per_seed: Sequence[float], n_images: int, noise_sd: "float | None" = None) -> float:
    """Standard error of the mean top-1 over seeds (fractions).

    The held-out images are the same for every seed, so their binomial sampling error does not
    shrink with more seeds; the training noise (the spread between seeds) does, by sqrt(seeds).
    With one seed the training noise is ``noise_sd`` (one run's sd, as ``proxy check`` measured
    it), or unknown and left out.
    """
    mean = float(np.mean(per_seed))
    var = binomial_se(mean, n_images) ** 2 + training_var(per_seed, noise_sd) / len(per_seed)
    return math.sqrt(var)


def training_var(per_seed: Sequence[float], noise_sd: "float | None") -> float:
    """Variance of one run from training noise: the spread between seeds, else the stated ``noise_sd``."""
    if len(per_seed) > 1:
        return float(np.var(per_seed, ddof=1))
    return (noise_sd or 0.0) ** 2


def paired_difference(a: Sequence[float], b: Sequence[float], n_images: int,
                      noise_sd: "float | None" = None) -> tuple[float, float]:
    """Mean and standard error of ``a - b`` for two genomes trained at the same seeds (fractions).

    Pairing by seed takes the training noise from the spread of the per-seed differences; with
    one seed, from the stated one-run ``noise_sd`` of each genome. Each genome's binomial error on
    the held-out images is added.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a - b
    var = binomial_se(float(a.mean()), n_images) ** 2 + binomial_se(float(b.mean()), n_images) ** 2
    if len(diff) > 1:
        var += float(np.var(diff, ddof=1)) / len(diff)
    else:
        var += 2 * (noise_sd or 0.0) ** 2
    return float(diff.mean()), math.sqrt(var)


def unpaired_difference(a: Sequence[float], b: Sequence[float], n_images: int, noise_a: "float | None" = None,
                        noise_b: "float | None" = None) -> tuple[float, "float | None"]:
    """Mean and standard error of ``mean(a) - mean(b)`` for two genomes not trained at the same seeds (fractions).

    Welch's combination: each mean's :func:`accuracy_se` (training noise from its own seeds' spread, or
    with one seed from its stated one-run ``noise_a``/``noise_b``) added in quadrature, so the difference
    is never surer than either mean. A side with one seed and no stated noise has an unknown training
    noise: the error is then None.
    """
    diff = float(np.mean(a)) - float(np.mean(b))
    if (len(a) == 1 and noise_a is None) or (len(b) == 1 and noise_b is None):
        return diff, None
    return diff, math.sqrt(accuracy_se(a, n_images, noise_a) ** 2 + accuracy_se(b, n_images, noise_b) ** 2)


def verdict(diff: float, se: "float | None", z: float = BEYOND_NOISE_Z) -> str:
    """``better``/``worse`` when ``diff`` is beyond ``z`` standard errors, else ``indistinguishable``;
    ``unknown`` when the error is unknown (None)."""
    if se is None:
        return "unknown"
    if diff > z * se:
        return "better"
    if diff < -z * se:
        return "worse"
    return "indistinguishable"


def seed_agreement(scores: np.ndarray) -> "float | None":
    """Mean Kendall tau between the genome rankings of every pair of seeds (columns); None for one seed."""
    pairs = list(itertools.combinations(range(scores.shape[1]), 2))
    if not pairs:
        return None
    return float(np.mean([kendall_tau(list(scores[:, i]), list(scores[:, j])) for i, j in pairs]))


def run_noise(scores: np.ndarray) -> "float | None":
    """Pooled standard deviation between seeds of one genome (rows: genomes, columns: seeds)."""
    if scores.shape[1] < 2:
        return None
    return float(math.sqrt(np.mean(np.var(scores, axis=1, ddof=1))))


def paired_noise(scores: np.ndarray) -> "float | None":
    """``run_noise`` once each seed's shift over all genomes is taken out (columns centred): the noise of one
    run that a comparison of two genomes at the same seed (or in the same supernet) sees, per genome."""
    return run_noise(scores - scores.mean(axis=0, keepdims=True)) if scores.shape[0] > 1 else None


def noise_report(scores: np.ndarray) -> dict[str, "float | None"]:
    """Seed agreement, run noise (plain and paired), spread between genomes of the seed mean, and the
    ratio of spread to run noise (points)."""
    noise = run_noise(scores)
    spread = float(np.std(scores.mean(axis=1), ddof=1)) if scores.shape[0] > 1 else None
    return {"seed_tau": seed_agreement(scores), "run_noise_sd": noise, "paired_noise_sd": paired_noise(scores),
            "genome_spread_sd": spread, "spread_to_noise": spread / noise if noise and spread is not None else None}


def fidelity(proxy: np.ndarray, reference: np.ndarray) -> dict[str, "float | None"]:
    """Fidelity of a proxy: rows are genomes, columns seeds, values top-1 in percent.

    ``proxy`` noise and agreement, the same for ``reference``, and proxy-vs-reference rank
    agreement of the seed means (Kendall tau, Spearman rho, overlap of the top thirds).
    """
    p_mean, r_mean = list(proxy.mean(axis=1)), list(reference.mean(axis=1))
    return {"genomes": int(proxy.shape[0]), "proxy_seeds": int(proxy.shape[1]),
            "reference_seeds": int(reference.shape[1]),
            "proxy": noise_report(proxy), "reference": noise_report(reference),
            "kendall_tau": kendall_tau(p_mean, r_mean), "kendall_tau_interval": tau_interval(p_mean, r_mean),
            "spearman_rho": spearman_rho(p_mean, r_mean), "top_third_overlap": top_overlap(p_mean, r_mean)}


def tau_interval(x: "Sequence[float]", y: "Sequence[float]", level: float = TAU_INTERVAL_LEVEL,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of Kendall's tau over the genomes (resampled with replacement):
    how far the tau of this many genomes moves with other genomes drawn the same way."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    taus = kendall_taus(x[picks], y[picks])
    low, high = np.quantile(taus, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


def free_rankings(costs: "dict[str, Sequence[float]]", reference: np.ndarray) -> dict[str, float]:
    """Kendall tau against the reference's seed means of rankings that cost nothing to compute
    (``costs``: name -> one value per genome, e.g. params and MAdds): what a proxy has to beat."""
    r_mean = list(reference.mean(axis=1))
    return {name: kendall_tau([float(v) for v in values], r_mean) for name, values in costs.items()}
