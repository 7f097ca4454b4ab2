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
between endpoints. The result is bit for bit that of the row-by-row scan this replaced (kept as
``tests/unit/anomaly/reference_scan.py``), found in three vectorised stages:

1. the reference's best lower bound, fractional counts dropped: every level then counts
   ``#{pmax <= alpha}`` ones, so it is the point scan of pmax (:func:`_scan_pmax_rows`);
2. a fractional count ``w(alpha) = (alpha - pmin) / (pmax - pmin)`` can raise a positive F only
   where ``w > alpha`` ("helpful", ``scan_statistics``). Rows with no such count, or whose ray bound
   on every subset with fractional counts stays below stage 1 (:func:`_may_improve`), keep stage 1:
   ReLU ties at 0 (upper-tail ranges ``[~1/2, 1]``) are never helpful;
3. the other rows are scanned level by level (``ltss.scan_range_rows``) on levels shared by a block
   of rows (:func:`shared_levels`: empirical p-values ``k / (n + 1)`` share one lattice), skipping
   levels the statistic's bound rules out and sorting only the helpful counts.

Every number takes ``O(J)`` (stage 1: ``O(J log J)``) vectorised work per row; stage 3 adds the
sort of each unpruned level's helpful counts. The ``device`` of :func:`scan_samples` runs all of
it in torch (float64) on a GPU, rows in blocks.

Group scan (:func:`scan_group`): iterative ascent (McFowland et al. 2013, section 4), alternating
the exact best node subset given the samples and the exact best sample subset given the nodes
(:mod:`~disentune.anomaly.ltss`, both maximised over one fixed ``alpha`` grid, so the score never
decreases) until neither improves. Restart 0 starts from all samples; restart ``r > 0`` from a
random sample subset (each sample kept with a probability drawn uniformly in (0, 1)). The result
is a local optimum: the best of the restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from disentune.anomaly.ltss import (
    _SLACK,
    best_along_axis,
    candidate_alphas,
    count_table,
    scan_range_rows,
)
from disentune.anomaly.scan_statistics import (
    BOUNDS,
    NUMPY,
    NumpyOps,
    ScanBound,
    ScanStatistic,
    backend,
    get_statistic,
    near_helpful,
    ops_for,
)
from disentune.errors import ConfigError

_RAY_BLOCK = 32  # positions per block of the first pass of _may_improve's bound
_TABLE = 1 << 22  # most buckets of a Levels table (32 MiB)


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


def _ranges(pmin: Any, pmax: Any, ops: NumpyOps = NUMPY) -> tuple[Any, Any]:
    lo = ops.asarray(pmin)
    hi = lo if pmax is None else ops.asarray(pmax)
    if lo.ndim != 2 or tuple(lo.shape) != tuple(hi.shape) or 0 in tuple(lo.shape):
        raise ValueError(
            f"p-values must be non-empty (n, J) with pmin and pmax alike; got {tuple(lo.shape)}, {tuple(hi.shape)}"
        )
    if not (bool(lo.min() >= 0) and bool(hi.max() <= 1) and (hi is lo or bool((lo <= hi).all()))):
        raise ValueError("p-value ranges must satisfy 0 <= pmin <= pmax <= 1 (and contain no NaN)")
    return lo, hi


def _check_alpha_max(alpha_max: float) -> float:
    if not 0.0 < alpha_max < 1.0:
        raise ConfigError(f"alpha_max must lie in (0, 1); got {alpha_max!r}")
    return float(alpha_max)


def _scan_point_rows(p: Any, statistic: ScanStatistic, alpha_max: float, ops: NumpyOps = NUMPY):
    """Closed-form per-sample scan of point p-values ``(m, J)``: see the module docstring.

    Returns ``score, alpha, nodes`` and the rows' sorted prefixes ``p_(k) <= alpha_max`` ``(m, K)``.
    """
    ordered = ops.sort(p)
    # only the sorted prefix p_(k) <= alpha_max can score: trim to its longest length over the rows
    ordered = ordered[:, : max(1, int(ops.count_nonzero(ordered <= alpha_max, axis=1).max()))]
    rank = ops.to_float(ops.arange(1, ordered.shape[1] + 1))
    valid = (ordered > 0) & (ordered <= alpha_max)
    scores = ops.where(valid, statistic(rank, rank, ops.where(valid, ordered, alpha_max)), 0.0)
    best = ops.argmax(scores, axis=1)[:, None]
    score = ops.take(scores, best)[:, 0]
    alpha = ops.where(score > 0, ops.take(ordered, best)[:, 0], alpha_max)
    nodes = (p <= alpha[:, None]) & (score > 0)[:, None]
    return score, alpha, nodes, ordered


def _scan_pmax_rows(lo: Any, hi: Any, statistic: ScanStatistic, alpha_max: float, ops: NumpyOps):
    """The reference's best lower bound for rows of ranges ``(R, J)``: the fractional counts dropped.

    Every grid level's count of ones is then ``#{pmax <= a}``, and F decreases in ``a`` at a fixed
    count, so the best level is a pmax (the point scan of pmax) or, where pmax values of 0 count
    below every level, the lowest level (the least positive endpoint, or ``alpha_max``), which wins
    ties (the reference takes the first maximum). Returns ``score, alpha, nodes``, pmax's sorted
    prefix ``(R, K)`` and the lowest level ``(R, 1)``.
    """
    score, alpha, _, ordered = _scan_point_rows(hi, statistic, alpha_max, ops)
    lowest = ops.amin(ops.where(lo > 0, lo, ops.where(hi > 0, hi, 1.0)), axis=1)
    lowest = ops.clip(lowest, 0.0, alpha_max)
    ones = ops.count_nonzero(hi <= lowest[:, None], axis=1)
    at_lowest = statistic(ones, ones, lowest)
    first = at_lowest >= score
    score = ops.where(first, at_lowest, score)
    alpha = ops.where(score > 0, ops.where(first, lowest, alpha), alpha_max)
    return score, alpha, (hi <= alpha[:, None]) & (score > 0)[:, None], ordered, lowest[:, None]


def _may_improve(lo: Any, hi: Any, ordered: Any, lowest: Any, score: Any, alpha: Any, statistic: ScanStatistic,
                 alpha_max: float, ops: NumpyOps) -> Any:
    """Rows ``(R,)`` of ranges whose scan can differ from their best lower bound (:func:`_scan_pmax_rows`).

    A row keeps it unless a fractional count helps (``w > a``, see ``scan_statistics``). With ``H``
    such nodes, each count at most ``wbar(a) = a + e (a - t)`` (``e``, ``t``: the row's largest slope
    excess and smallest onset), the sizes past the ``k`` ones score at most ``F(k + j wbar, k + j)``
    along a ray, largest at ``j = 1`` or ``j = H`` (F is convex or quasi-convex on rays). Over the
    levels with ``k`` ones, ``[p_(k), p_(k+1))``, take ``wbar`` at the right end and ``F``'s alpha at
    the left. Rows whose bound stays below the score (less a slack) keep it, unless a count at the
    best level may round to 1 (the reference sorts it among the ones, so it may pick other nodes).
    """
    # counts > a (1 - 1e-6) somewhere: w = a counts too, as its rounding can lift a score of 0
    helpful, onset = near_helpful(lo, hi, alpha_max, ops)
    a = alpha[:, None]
    rounds = ((lo < a) & (a < hi) & (a - lo >= (hi - lo) * (1 - 1e-12))).any(axis=1)
    rows = ops.nonzero(helpful.any(axis=1))[0]
    if not rows.shape[0]:
        return rounds
    helpful, onset, lo, hi = helpful[rows], onset[rows], lo[rows], hi[rows]
    many = ops.to_float(ops.count_nonzero(helpful, axis=1))[:, None]
    excess = ops.amax(ops.where(helpful, 1.0 / ops.where(helpful, hi - lo, 1.0) - 1.0, 0.0), axis=1)[:, None]
    start = ops.amin(ops.where(helpful, onset, 1.0), axis=1)[:, None]
    best = score[rows][:, None]
    left = ops.maximum(ops.concatenate([lowest[rows], ordered[rows]], axis=1), lowest[rows])  # (R', K + 1)
    right = ops.concatenate([ordered[rows], ops.full((rows.shape[0], 1), alpha_max)], axis=1)
    right = ops.clip(right, 0.0, alpha_max)

    def reaches(ones: Any, level: Any, top: Any, at: Any) -> Any:  # k ones, alpha >= level, counts <= wbar(top)
        bonus, onset0, count, target = excess[at], start[at], many[at], best[at]
        wbar = ops.clip(top + bonus * ops.clip(top - onset0, 0.0, None), 0.0, 1.0)
        ray = ops.maximum(statistic(ones + wbar, ones + 1.0, level),
                          statistic(ones + count * wbar, ones + count, level))
        return (ray + _SLACK * (abs(target) + ones + count + 1.0) >= target) & (level <= alpha_max)

    # blocks of _RAY_BLOCK positions first (F grows with the ones and falls with alpha), then the
    # positions of the blocks that are not ruled out
    width = left.shape[1]
    first = ops.arange(width)[::_RAY_BLOCK]
    last = ops.clip(first + _RAY_BLOCK - 1, 0, width - 1)
    every = ops.arange(rows.shape[0])
    row, block = ops.nonzero(reaches(ops.to_float(last)[None, :], ops.clip(left[:, first], 0.0, alpha_max),
                                     right[:, last], every))
    position = ops.clip(first[block][:, None] + ops.arange(_RAY_BLOCK)[None, :], 0, width - 1)
    fine = reaches(ops.to_float(position), ops.clip(left[row[:, None], position], 0.0, alpha_max),
                   right[row[:, None], position], row)
    lifted = ops.zeros((rows.shape[0],), "bool")
    lifted[row[fine.any(axis=1)]] = True
    rounds[rows] = rounds[rows] | lifted
    return rounds


class Levels(NamedTuple):
    """The levels of a block of rows: ``values (W,)`` ascending (the last is ``alpha_max``), and,
    when no two are too close, a bucket table: bucket ``floor(x * scale)`` (distinct levels lie >= 3
    buckets apart), ``first[b]`` the column of the first level in a bucket ``>= b``."""

    values: Any
    scale: float
    first: Any | None

    def locate(self, x: Any, ops: NumpyOps) -> Any:
        """A level's own column; for any ``x``, a column no later than the first level ``>= x``
        (``W`` above ``alpha_max``). Exact for levels: they are bucketed by the same product."""
        if self.first is None:
            return ops.searchsorted(self.values, x, side="left")
        top = float(self.values[-1])
        bucket = ops.to_int(ops.clip(x, 0.0, top) * self.scale)
        return ops.where(x > top, self.values.shape[0], self.first[bucket])


def shared_levels(lo: Any, hi: Any, alpha_max: float, ops: NumpyOps = NUMPY) -> Levels | None:
    """The distinct endpoints ``<= alpha_max`` of rows ``(R, J)``, with ``alpha_max``, as columns the
    rows share, when there are at most ``2 J + 1`` (always for one row; for many rows of empirical
    p-values ``k / (n + 1)`` when ``n <= 2 J``); None otherwise. A bucket table finds values among
    them unless two are so close that it would exceed ``_TABLE`` entries (then: binary search)."""
    ends = ops.concatenate([lo[lo <= alpha_max], hi[(hi <= alpha_max) & (hi > lo)], ops.full((1,), alpha_max)])
    values = ops.unique(ends)
    width = int(values.shape[0])
    if width > 2 * lo.shape[1] + 1:
        return None
    gap = float((values[1:] - values[:-1]).min()) if width > 1 else 1.0
    scale = 4.0 / gap
    if alpha_max * scale > _TABLE:
        return Levels(values, 0.0, None)
    first = ops.searchsorted(ops.to_int(values * scale), ops.arange(int(alpha_max * scale) + 2), side="left")
    return Levels(values, scale, first)


def _scan_range_block(lo: Any, hi: Any, statistic: ScanStatistic, bound: ScanBound, alpha_max: float,
                      ops: NumpyOps) -> tuple[Any, Any, Any]:
    """The exact scan of rows of ranges on their shared levels; halved while they have too many."""
    levels = shared_levels(lo, hi, alpha_max, ops)
    if levels is not None:
        return scan_range_rows(lo, hi, statistic, bound, alpha_max, levels, ops)
    half = lo.shape[0] // 2  # arbitrary ranges, not empirical p-values: one row always fits
    parts = [_scan_range_block(lo[rows], hi[rows], statistic, bound, alpha_max, ops)
             for rows in (slice(0, half), slice(half, None))]
    return tuple(ops.concatenate([a, b]) for a, b in zip(*parts))


def _blocks(rows: Any, size: int):
    """Consecutive pieces of ``size`` of an index array ``rows``."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def scan_samples(
    pmin: Any,
    pmax: Any = None,
    *,
    statistic: str = "berk_jones",
    alpha_max: float = 0.5,
    device: Any = None,
) -> SampleScan:
    """Score each sample (row of ``(n, J)`` p-value ranges) by its most anomalous node subset.

    ``pmin``, ``pmax`` are numpy arrays or torch tensors. ``device`` None scans with numpy (or, for
    tensors, with torch where they live); "cpu", "cuda", ... (or "auto") scans with torch there, in
    float64. The result holds numpy arrays either way.
    """
    ops = backend(device) if device is not None else ops_for(pmin, pmax)
    lo, hi = _ranges(pmin, pmax, ops)
    stat, bound, alpha_max = get_statistic(statistic), BOUNDS[statistic], _check_alpha_max(alpha_max)
    n, num = lo.shape
    score, alpha = ops.zeros((n,)), ops.full((n,), alpha_max)
    nodes = ops.zeros((n, num), "bool")
    point = (lo == hi).all(axis=1)
    chunk = max(1, ops.cells // max(num, 1))  # rows per block
    for block in _blocks(ops.nonzero(point)[0], chunk):
        score[block], alpha[block], nodes[block], _ = _scan_point_rows(lo[block], stat, alpha_max, ops)
    hard = []  # ranged rows: the point scan of pmax, unless a fractional count may beat it
    for block in _blocks(ops.nonzero(~point)[0], chunk):
        block_lo, block_hi = lo[block], hi[block]
        got = _scan_pmax_rows(block_lo, block_hi, stat, alpha_max, ops)
        score[block], alpha[block], nodes[block] = got[:3]
        hard.append(block[_may_improve(block_lo, block_hi, *got[3:], got[0], got[1], stat, alpha_max, ops)])
    for block in _blocks(ops.concatenate(hard) if hard else [], max(1, ops.cells // (2 * num + 1))):
        score[block], alpha[block], nodes[block] = _scan_range_block(lo[block], hi[block], stat, bound,
                                                                     alpha_max, ops)
    nodes = ops.numpy(nodes)
    return SampleScan(ops.numpy(score), ops.numpy(alpha), nodes.sum(axis=1), nodes)


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
