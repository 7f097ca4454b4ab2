"""Linear-time subset scanning along one axis of a p-value matrix (Neill 2012; McFowland et al. 2013).

The problem solved here: p-value ranges ``(n_other, E)`` for a *fixed* subset of ``n_other`` rows
(samples, say) and ``E`` candidate elements (nodes); find the element subset ``S`` and the level
``alpha`` in a candidate grid ``A`` that maximise ``F(alpha, N_alpha(S), N(S))`` with

    N_alpha(S) = sum_{e in S} c_e(alpha),   c_e(alpha) = sum_i n_alpha(p_ie)   (expected counts)
    N(S)       = n_other * |S|.

For a fixed ``alpha`` the statistic depends on ``S`` only through ``(N_alpha, |S|)`` and increases in
``N_alpha`` at fixed size, so the best subset of each size is the top-``k`` elements by priority
``c_e(alpha)`` (the LTSS property): ``E`` candidates per ``alpha`` instead of ``2^E``. Everything here
is exact over the grid ``A``.

Two ways to take the maximum over ``k``:

- sorting (any counts): sort each row of the ``(|A|, E)`` count table, cumulate, score all ``k``;
- blocks (integer counts ``c_e <= n_other`` of point p-values, used when ``n_other <= E``): along the
  sorted order, elements with equal count lie on a line in ``(N_alpha, N)`` on which F is convex
  (Berk-Jones: the perspective of a convex function) or quasi-convex where positive (HC, KS), so
  the maximum is at a block end ``k = K_c = #{e: c_e >= c}``, ``c = 1..n_other``. With
  ``q[c-1, e]`` the ``c``-th smallest p-value of element ``e``, ``K_c(alpha) = #{e: q[c-1, e] <= alpha}``
  and ``N_alpha = (c - 1) K_c + sum_{c' >= c} K_{c'}``. This costs ``O(n_other E log E)`` plus
  ``O(|A| n_other)`` scores instead of ``O(|A| E log E)``.

The empty subset scores 0, so every maximum returned is ``>= 0``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from disentune.anomaly.scan_statistics import ScanStatistic

# Largest number of (alpha, element) cells scored at once; bounds temporary memory (~32 MiB each).
_CHUNK_CELLS = 1 << 22


class AxisBest(NamedTuple):
    """Best element subset along one axis: score >= 0, its alpha, and a boolean mask ``(E,)``."""

    score: float
    alpha: float
    mask: np.ndarray


def candidate_alphas(
    pmin: np.ndarray, pmax: np.ndarray, alpha_max: float, max_alphas: int | None = None
) -> np.ndarray:
    """Sorted candidate levels: distinct range endpoints in ``(0, alpha_max)``, then ``alpha_max``.

    With point p-values these are the only levels where a maximum over ``alpha`` can occur (between
    two of them every count is constant and F decreases in ``alpha``). ``max_alphas`` keeps at most
    that many of the endpoints, evenly spaced by rank (as the reference implementation of Cintas et
    al. does for speed), plus ``alpha_max``.
    """
    ends = np.unique(np.concatenate([np.ravel(pmin), np.ravel(pmax)]))
    ends = ends[(ends > 0) & (ends < alpha_max)]
    if max_alphas is not None and len(ends) > max_alphas:
        ends = ends[np.unique(np.round(np.linspace(0, len(ends) - 1, max_alphas)).astype(int))]
    return np.append(ends, alpha_max)


def count_table(pmin: np.ndarray, pmax: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Expected counts ``c_e(alpha)`` ``(|A|, E)`` of ranges ``(n_other, E)`` at sorted ``alphas``.

    Every range contributes a ramp ``clip((alpha - pmin) / (pmax - pmin), 0, 1)`` (a step at ``p``
    for a point); ramps are accumulated as difference arrays over the grid, so the cost is
    ``O(n_other E log |A| + |A| E)``. Integer dtype when every range is a point.
    """
    n_other, num = pmin.shape
    n_alphas = len(alphas)
    cols = np.broadcast_to(np.arange(num), pmin.shape)
    full_from = np.searchsorted(alphas, pmax, side="left")  # first alpha >= pmax

    def accumulate(at: np.ndarray, columns: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        flat = np.bincount((at * num + columns).ravel(), weights=None if weights is None else weights.ravel(),
                           minlength=(n_alphas + 1) * num)
        return flat.reshape(n_alphas + 1, num)

    counts = np.cumsum(accumulate(full_from, cols), axis=0)[:n_alphas]
    ranged = pmax > pmin
    if not ranged.any():
        return counts
    lo, hi, col, stop = pmin[ranged], pmax[ranged], cols[ranged], full_from[ranged]
    start = np.searchsorted(alphas, lo, side="right")  # first alpha > pmin
    inv = 1.0 / (hi - lo)
    slope = accumulate(start, col, inv) - accumulate(stop, col, inv)
    offset = accumulate(start, col, lo * inv) - accumulate(stop, col, lo * inv)
    ramp = alphas[:, None] * np.cumsum(slope, axis=0)[:n_alphas] - np.cumsum(offset, axis=0)[:n_alphas]
    return np.clip(counts + ramp, 0.0, float(n_other))


def best_by_sorting(counts: np.ndarray, unit: float, alphas: np.ndarray, statistic: ScanStatistic) -> AxisBest:
    """Exact LTSS maximum over ``alphas`` and top-``k`` subsets of a count table ``(|A|, E)``.

    Each chosen element adds ``unit`` to ``N`` (the size of the fixed other axis).
    """
    n_alphas, num = counts.shape
    sizes = unit * np.arange(1, num + 1, dtype=float)
    best, best_a, best_k = 0.0, -1, 0
    step = max(1, _CHUNK_CELLS // max(num, 1))
    for start in range(0, n_alphas, step):
        block = counts[start : start + step]
        cum = np.cumsum(-np.sort(-block, axis=1), axis=1)
        scores = statistic(cum, sizes, alphas[start : start + step, None])
        flat = int(np.argmax(scores))
        if scores.flat[flat] > best:
            best = float(scores.flat[flat])
            best_a, best_k = start + flat // num, flat % num + 1
    mask = np.zeros(num, dtype=bool)
    if best_a < 0:
        return AxisBest(0.0, float(alphas[-1]), mask)
    mask[np.argsort(-counts[best_a], kind="stable")[:best_k]] = True
    return AxisBest(best, float(alphas[best_a]), mask)


def best_by_blocks(p: np.ndarray, alphas: np.ndarray, statistic: ScanStatistic) -> AxisBest:
    """Exact LTSS maximum for point p-values ``p (n_other, E)`` by count blocks (module docstring)."""
    n_other, num = p.shape
    q = np.sort(p, axis=0)  # q[c - 1, e]: c-th smallest p-value of element e
    ordered = np.sort(q, axis=1)
    at_least = np.stack([np.searchsorted(row, alphas, side="right") for row in ordered], axis=1)
    tail = np.cumsum(at_least[:, ::-1], axis=1)[:, ::-1]  # sum_{c' >= c} K_c'
    n_alpha = np.arange(n_other)[None, :] * at_least + tail
    scores = statistic(n_alpha, at_least * n_other, alphas[:, None])
    flat = int(np.argmax(scores))
    if scores.flat[flat] <= 0:
        return AxisBest(0.0, float(alphas[-1]), np.zeros(num, dtype=bool))
    a, c = divmod(flat, n_other)
    return AxisBest(float(scores.flat[flat]), float(alphas[a]), q[c] <= alphas[a])


def best_along_axis(
    pmin: np.ndarray, pmax: np.ndarray, alphas: np.ndarray, statistic: ScanStatistic
) -> AxisBest:
    """Best subset of the ``E`` columns of ranges ``(n_other, E)`` given all ``n_other`` rows."""
    n_other, num = pmin.shape
    if n_other == 0 or num == 0:
        return AxisBest(0.0, float(alphas[-1]), np.zeros(num, dtype=bool))
    if n_other <= num and np.array_equal(pmin, pmax):
        return best_by_blocks(pmin, alphas, statistic)
    return best_by_sorting(count_table(pmin, pmax, alphas), float(n_other), alphas, statistic)
