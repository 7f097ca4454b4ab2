"""Subset scanning of node activations: per-sample and group scans over p-value ranges.

Cintas et al. 2020 ("Detecting Adversarial Attacks via Subset Scanning of Autoencoder Activations
and Reconstruction Error", IJCAI) score a sample by the most anomalous subset of its nodes under a
non-parametric scan statistic, and a group of samples by the most anomalous sub-matrix of samples
x nodes, both with the Fast Generalized Subset Scan (McFowland, Speakman & Neill 2013):

    score(S) = max_{0 < alpha <= alpha_max} F(alpha, N_alpha(S), N(S))

where ``N(S)`` counts the p-values in ``S`` and ``N_alpha(S)`` those ``<= alpha`` (expected counts for
ranges, see ``scan_statistics``). Inputs are p-value ranges ``pmin, pmax`` of shape ``(n, J)``
(``pmax=None`` for point p-values); the empty subset scores 0, so scores are ``>= 0``.

Per-sample scan (:func:`scan_samples`), point p-values, exact over every node subset and every
real ``alpha`` in ``(0, alpha_max]``: for a fixed ``alpha`` the best subset of size ``k`` holds the
``k`` smallest p-values (LTSS, priority = p-value). With ``m(alpha)`` of them ``<= alpha``, sizes
``k <= m`` score ``F(alpha, k, k)``, increasing in ``k``, and sizes ``k > m`` only add non-significant
nodes, which lowers F, so the best subset is exactly ``{j: p_j <= alpha}``. As F decreases in
``alpha`` at fixed counts, ``alpha`` is best at a p-value, and the score is

    max_k F(p_(k), k, k)      over the sorted p-values p_(1) <= ... <= p_(J) with p_(k) <= alpha_max

(the tied block ends win automatically). One row sort: ``O(J log J)`` per sample, vectorised.

Rows with ranges (ties): ``alpha`` runs over the row's distinct range endpoints in ``(0, alpha_max)``
plus ``alpha_max``, and for each of these the best node subset is exact (top-``k`` by expected
count). Exact over that grid, not over every real ``alpha``: with fractional counts F can peak
between endpoints. Ranges that straddle no grid point count 0 or 1 everywhere on the grid and
are handled as point p-values (at ``pmax``); only the rest are sorted per ``alpha``.

Group scan (:func:`scan_group`): iterative ascent (McFowland et al. 2013, section 4), alternating
the exact best node subset given the samples and the exact best sample subset given the nodes
(:mod:`~disentune.anomaly.ltss`, both maximised over one fixed ``alpha`` grid, so the score never
decreases) until neither improves. Restart 0 starts from all samples; restart ``r > 0`` from a
random sample subset (each sample kept with a probability drawn uniformly in (0, 1)). The result
is a local optimum: the best of the restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disentune.anomaly.ltss import best_along_axis, candidate_alphas, count_table
from disentune.anomaly.scan_statistics import ScanStatistic, alpha_counts, get_statistic
from disentune.errors import ConfigError

_CHUNK_CELLS = 1 << 22


@dataclass(frozen=True)
class SampleScan:
    """Per-sample scan of ``n`` samples over ``J`` nodes.

    ``score`` ``(n,)`` >= 0, ``alpha`` ``(n,)`` (``alpha_max`` where the score is 0), ``size`` ``(n,)``
    the number of nodes in the best subset, ``nodes`` ``(n, J)`` bool the best subset.
    """

    score: np.ndarray
    alpha: np.ndarray
    size: np.ndarray
    nodes: np.ndarray


@dataclass(frozen=True)
class GroupScan:
    """Group scan result: ``samples`` ``(n,)`` and ``nodes`` ``(J,)`` bool masks of the best sub-matrix.

    ``restart_scores`` holds the converged score of every restart (restart 0 first).
    """

    score: float
    alpha: float
    samples: np.ndarray
    nodes: np.ndarray
    restart_scores: tuple[float, ...]


def _ranges(pmin: np.ndarray, pmax: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(pmin, dtype=float)
    hi = lo if pmax is None else np.asarray(pmax, dtype=float)
    if lo.ndim != 2 or lo.shape != hi.shape or 0 in lo.shape:
        raise ValueError(f"p-values must be non-empty (n, J) with pmin and pmax alike; got {lo.shape}, {hi.shape}")
    if lo.size and not (lo.min() >= 0 and hi.max() <= 1 and (hi is lo or np.all(lo <= hi))):
        raise ValueError("p-value ranges must satisfy 0 <= pmin <= pmax <= 1 (and contain no NaN)")
    return lo, hi


def _check_alpha_max(alpha_max: float) -> float:
    if not 0.0 < alpha_max < 1.0:
        raise ConfigError(f"alpha_max must lie in (0, 1); got {alpha_max!r}")
    return float(alpha_max)


def _scan_point_rows(p: np.ndarray, statistic: ScanStatistic, alpha_max: float):
    """Closed-form per-sample scan of point p-values ``(m, J)``: see the module docstring."""
    ordered = np.sort(p, axis=1)
    # only the sorted prefix p_(k) <= alpha_max can score: trim to its longest length over the rows
    ordered = ordered[:, : max(1, int(np.count_nonzero(ordered <= alpha_max, axis=1).max()))]
    rank = np.arange(1, ordered.shape[1] + 1, dtype=float)
    valid = (ordered > 0) & (ordered <= alpha_max)
    scores = np.where(valid, statistic(rank, rank, np.where(valid, ordered, alpha_max)), 0.0)
    best = np.argmax(scores, axis=1)
    rows = np.arange(len(p))
    score = scores[rows, best]
    alpha = np.where(score > 0, ordered[rows, best], alpha_max)
    nodes = (p <= alpha[:, None]) & (score > 0)[:, None]
    return score, alpha, nodes


def _scan_range_row(lo: np.ndarray, hi: np.ndarray, statistic: ScanStatistic, alpha_max: float):
    """Per-sample scan of one row of ranges ``(J,)``, exact over its endpoint grid.

    Levels whose upper bound (every positive count raised to 1) cannot beat the best lower bound
    (fractional counts dropped) are skipped; the rest are scored exactly, a few at a time, sorting
    only the ranges that are fractional somewhere in that handful.
    """
    alphas = candidate_alphas(lo, hi, alpha_max)
    straddles = np.searchsorted(alphas, hi, side="left") > np.searchsorted(alphas, lo, side="right")
    frac = (hi > lo) & straddles  # the only nodes with a fractional count somewhere on the grid
    m = np.searchsorted(np.sort(hi[~frac]), alphas, side="right")  # others count 1[pmax <= alpha]
    f_lo, f_hi = lo[frac], hi[frac]
    full = np.searchsorted(np.sort(f_hi), alphas, side="right")  # ranges wholly <= alpha
    positive = np.searchsorted(np.sort(f_lo), alphas, side="left")  # ranges with pmin < alpha
    lower = statistic(m + full, m + full, alphas)
    upper = statistic(m + positive, m + positive, alphas)
    best_a = int(np.argmax(lower))
    best, best_i = float(lower[best_a]), int(full[best_a])
    todo = np.flatnonzero(upper > best)
    for start in range(0, len(todo), 32):
        idx = todo[start : start + 32]
        a = alphas[idx]
        below = int(np.count_nonzero(f_hi <= a[0]))  # count 1 at every level of this handful
        active = (f_hi > a[0]) & (f_lo < a[-1])
        weights = -np.sort(-alpha_counts(a[:, None], f_lo[active], f_hi[active]), axis=1)
        gained = np.concatenate([np.zeros((len(a), 1)), np.cumsum(weights, axis=1)], axis=1)
        base = (m[idx] + below)[:, None]
        scores = statistic(base + gained, base + np.arange(gained.shape[1]), a[:, None])
        flat = int(np.argmax(scores))
        if scores.flat[flat] > best:
            best = float(scores.flat[flat])
            best_a, best_i = int(idx[flat // gained.shape[1]]), below + flat % gained.shape[1]
    nodes = np.zeros(len(lo), dtype=bool)
    if not best > 0:
        return 0.0, alpha_max, nodes
    alpha = alphas[best_a]
    nodes[~frac] = hi[~frac] <= alpha
    order = np.argsort(-alpha_counts(alpha, f_lo, f_hi), kind="stable")[:best_i]
    nodes[np.flatnonzero(frac)[order]] = True
    return best, float(alpha), nodes


def scan_samples(
    pmin: np.ndarray,
    pmax: np.ndarray | None = None,
    *,
    statistic: str = "berk_jones",
    alpha_max: float = 0.5,
) -> SampleScan:
    """Score each sample (row of ``(n, J)`` p-value ranges) by its most anomalous node subset."""
    lo, hi = _ranges(pmin, pmax)
    stat, alpha_max = get_statistic(statistic), _check_alpha_max(alpha_max)
    n, num = lo.shape
    score, alpha = np.zeros(n), np.full(n, alpha_max)
    nodes = np.zeros((n, num), dtype=bool)
    point = np.ones(n, dtype=bool) if hi is lo else np.all(lo == hi, axis=1)
    rows, chunk = np.flatnonzero(point), max(1, _CHUNK_CELLS // max(num, 1))
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        score[block], alpha[block], nodes[block] = _scan_point_rows(lo[block], stat, alpha_max)
    for i in np.flatnonzero(~point):
        score[i], alpha[i], nodes[i] = _scan_range_row(lo[i], hi[i], stat, alpha_max)
    return SampleScan(score, alpha, nodes.sum(axis=1), nodes)


def subset_score(
    pmin: np.ndarray,
    pmax: np.ndarray | None = None,
    *,
    samples: np.ndarray | None = None,
    nodes: np.ndarray | None = None,
    statistic: str = "berk_jones",
    alpha_max: float = 0.5,
    alphas: np.ndarray | None = None,
) -> tuple[float, float]:
    """``(score, alpha)`` of one given sub-matrix (boolean or index ``samples``, ``nodes``; None = all).

    ``alpha`` runs over ``alphas`` when given, else over the sub-matrix's own endpoint grid.
    """
    lo, hi = _ranges(pmin, pmax)
    stat, alpha_max = get_statistic(statistic), _check_alpha_max(alpha_max)
    rows = np.arange(lo.shape[0]) if samples is None else np.asarray(samples)
    cols = np.arange(lo.shape[1]) if nodes is None else np.asarray(nodes)
    lo, hi = lo[rows][:, cols], hi[rows][:, cols]
    grid = candidate_alphas(lo, hi, alpha_max) if alphas is None else np.unique(np.asarray(alphas, dtype=float))
    if lo.size == 0:
        return 0.0, float(grid[-1])
    n_alpha = count_table(lo, hi, grid).sum(axis=1)
    scores = stat(n_alpha, float(lo.size), grid)
    best = int(np.argmax(scores))
    return (float(scores[best]), float(grid[best])) if scores[best] > 0 else (0.0, float(grid[-1]))


def scan_group(
    pmin: np.ndarray,
    pmax: np.ndarray | None = None,
    *,
    statistic: str = "berk_jones",
    alpha_max: float = 0.5,
    restarts: int = 10,
    rng: np.random.Generator | int = 0,
    max_iter: int = 100,
    max_alphas: int | None = None,
) -> GroupScan:
    """Most anomalous sub-matrix (samples x nodes) of ``(n, J)`` p-value ranges by iterative ascent.

    ``alpha`` runs over the endpoints of all the ranges in ``(0, alpha_max)`` plus ``alpha_max``
    (thinned to ``max_alphas`` endpoints when given); ``max_iter`` bounds the ascent steps of one
    restart; ``rng`` draws the random initial sample subsets of restarts 1, 2, ...
    """
    lo, hi = _ranges(pmin, pmax)
    stat, alpha_max = get_statistic(statistic), _check_alpha_max(alpha_max)
    if restarts < 1 or max_iter < 1:
        raise ConfigError(f"restarts and max_iter must be >= 1; got {restarts!r}, {max_iter!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n, num = lo.shape
    alphas = candidate_alphas(lo, hi, alpha_max, max_alphas)
    lo_t, hi_t = np.ascontiguousarray(lo.T), np.ascontiguousarray(hi.T)
    best = GroupScan(0.0, alpha_max, np.zeros(n, bool), np.zeros(num, bool), ())
    scores: list[float] = []
    for restart in range(restarts):
        samples = np.ones(n, bool) if restart == 0 else gen.random(n) < gen.random()
        if not samples.any():
            samples[gen.integers(n)] = True
        current = (0.0, alpha_max, samples, np.zeros(num, bool))
        for step in range(2 * max_iter):
            if step % 2 == 0:  # nodes given the samples
                found = best_along_axis(lo[current[2]], hi[current[2]], alphas, stat)
                candidate = (found.score, found.alpha, current[2], found.mask)
            else:  # samples given the nodes
                found = best_along_axis(lo_t[current[3]], hi_t[current[3]], alphas, stat)
                candidate = (found.score, found.alpha, found.mask, current[3])
            if not found.score > current[0] * (1 + 1e-12) or not found.mask.any():
                break
            current = candidate
        scores.append(current[0])
        if current[0] > best.score:
            best = GroupScan(current[0], current[1], current[2], current[3], ())
    return GroupScan(best.score, best.alpha, best.samples, best.nodes, tuple(scores))
