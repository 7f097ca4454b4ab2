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

Rows of ranges, each scanned on its own (:func:`scan_range_rows`, stage 3 of the per-sample scan
in ``subset_scan``): a row's ranges ``(J,)`` are ``J`` elements with ``n_other = 1``, scanned over
that row's endpoint grid, for a block of rows at once (numpy or torch: ``scan_statistics``). Per row
and level: the nodes counting 1 (``c1``), the reference's lower and upper bounds (fractional counts
dropped, or raised to 1), and ``scan_statistics.BOUNDS`` from the sums of the helpful counts
(``w > alpha``) accumulated over the grid as difference arrays. Levels whose bound cannot reach the
best score so far are skipped; the rest sort only their helpful counts. The result is the
reference's (``tests/unit/anomaly/reference_scan.py``) bit for bit: :func:`_score_levels` says why
the skipped sizes cannot be the maximum, :func:`_exact_levels` why the skipped levels cannot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from disentune.anomaly.scan_statistics import (
    BORDER,
    NUMPY,
    NumpyOps,
    ScanBound,
    ScanStatistic,
    alpha_counts,
    near_helpful,
)

if TYPE_CHECKING:
    from disentune.anomaly.subset_scan import Levels

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


# ---- rows of ranges, each scanned over its own endpoint grid (the per-sample scan) ----

# Levels per exactly scored handful in the reference row loop. It fixes how each level's count of
# ones splits between the handful's base and its cumulative sum, hence the rounding of N_alpha.
_HANDFUL = 32
# Slack on the bounds, relative to the scores and counts involved: far above the rounding of the
# computed statistics (about J * 1e-16 relative), so a skipped level can never reach the best.
_SLACK = 1e-7
_EPS = float(np.finfo(float).eps)
_LEADS = 2  # levels scored one at a time per row before the rest (see _exact_levels)
_PART = 1024  # levels per padded table of _score_sorted


class _Grid(NamedTuple):
    """Each row's endpoint grid on ``W`` columns of ascending levels ``alphas (R, W)``.

    ``valid (R, W)`` marks the row's grid levels (its distinct endpoints in ``(0, alpha_max)`` and
    ``alpha_max``); ``code_lo``, ``code_hi (R, J)`` are the columns of each node's pmin / pmax (``W``
    above ``alpha_max``); ``frac (R, J)`` the nodes with a grid level strictly inside their range, the
    only ones ever counted fractionally; ``levels`` the block's :class:`Levels`.
    """

    alphas: Any
    valid: Any
    code_lo: Any
    code_hi: Any
    frac: Any
    levels: Levels

    def rows(self, index: Any) -> _Grid:
        return _Grid(*(field[index] for field in self[:5]), self.levels)


def _grid(lo: Any, hi: Any, levels: Levels, ops: NumpyOps) -> _Grid:
    """The rows' grids on the block's levels: each node's columns from the bucket table (no sort)."""
    rows, width = lo.shape[0], levels.values.shape[0]
    code_lo, code_hi = levels.locate(lo, ops), levels.locate(hi, ops)
    cells, size = ops.arange(rows)[:, None] * (width + 1), rows * (width + 1)
    hist = sum(ops.bincount((cells + code).reshape(-1), minlength=size) for code in (code_lo, code_hi))
    hist = hist.reshape(rows, width + 1)[:, :width]
    valid = ((hist > 0) & (levels.values > 0)[None, :]) | (ops.arange(width) == width - 1)[None, :]
    levels_upto = ops.concatenate([ops.zeros((rows, 1), "int"), ops.cumsum(valid, axis=1)], axis=1)
    inside = ops.take(levels_upto, code_hi) - ops.take(levels_upto, ops.clip(code_lo + 1, 0, width))
    return _Grid(ops.expand(levels.values[None, :], (rows, width)), valid, code_lo, code_hi,
                 (hi > lo) & (inside > 0), levels)


def _counts(grid: _Grid, ops: NumpyOps) -> tuple[Any, Any, Any]:
    """``m, full, positive (R, W)``: at each level, the other nodes with pmax ``<=`` it, and the
    fractional nodes with pmax ``<=`` it / pmin ``<`` it (one histogram, then running sums)."""
    rows, width = grid.valid.shape
    size = rows * (width + 1)
    cells = ops.arange(rows)[:, None] * (width + 1)
    by_hi = cells + grid.code_hi + size * ops.to_int(grid.frac)  # m's histogram, then full's
    by_lo = ops.where(grid.frac, cells + grid.code_lo + 2 * size, 3 * size)  # positive's; others unused
    hist = sum(ops.bincount(cell.reshape(-1), minlength=3 * size + 1) for cell in (by_hi, by_lo))
    hist = hist[: 3 * size].reshape(3, rows, width + 1)
    upto = ops.cumsum(hist, axis=2)
    return upto[0, :, :width], upto[1, :, :width], (upto[2] - hist[2])[:, :width]


def _interval_sums(row: Any, start: Any, stop: Any, weights: list, shape: tuple[int, int],
                   ops: NumpyOps) -> list:
    """For entries ``e`` (their ``row``) live on columns ``[start_e, stop_e)``: per weight vector,
    the ``(R, W)`` sums over the live entries at each column (difference arrays, then a cumsum)."""
    rows, width = shape
    cells = ops.concatenate([row * (width + 1) + start, row * (width + 1) + stop])
    sums = []
    for w in weights:
        hist = ops.bincount(cells, weights=ops.concatenate([w, -w]), minlength=rows * (width + 1))
        sums.append(ops.cumsum(hist.reshape(rows, width + 1), axis=1)[:, :width])
    return sums


def _level_bounds(lo: Any, hi: Any, grid: _Grid, near: tuple, a: Any, c1: Any, bound: ScanBound,
                  ops: NumpyOps) -> tuple[Any, Any]:
    """``(U, h)`` ``(R, W)``: the statistic's bound at every level ``a``, and the helpful counts there.

    A fractional node's count ``w(a) = (a - lo) / (hi - lo)`` exceeds ``a (1 - 1e-6)`` for ``a`` in
    ``(onset, hi)`` (``near``); its ``w``, ``(w - a)^2`` are linear / quadratic in ``a`` there, so ``S``
    and ``Q`` are sums of coefficient arrays over those column intervals (counts within 1e-6 of
    ``a`` only loosen the bound). Rounding: onsets are lowered and located at or before their level
    (intervals only grow), and ``S``, ``Q`` are widened by a bound on the cancellation error of the
    running sums.
    """
    rows, width = grid.alphas.shape
    row, node = ops.nonzero(near[0])  # counts above a (1 - 1e-6), not only above a: a looser bound
    f_lo, f_hi, t = lo[row, node], hi[row, node], near[1][row, node]
    slope = 1.0 / (f_hi - f_lo)
    offset = f_lo * slope  # w(a) = slope * a - offset
    start, stop = grid.levels.locate(t, ops), grid.code_hi[row, node]
    live = start < stop
    row, start, stop, slope, offset = row[live], start[live], stop[live], slope[live], offset[live]
    excess = slope - 1.0  # w(a) - a = excess * a - offset
    terms = [ops.full(tuple(slope.shape), 1.0), slope, offset, excess * excess, excess * offset,
             offset * offset]
    h, s_a, s_b, q_a, q_b, q_c = _interval_sums(row, start, stop, terms, (rows, width), ops)
    gross = [ops.bincount(row, weights=w, minlength=rows)[:, None] for w in terms[1:]]
    tol = (4.0 * lo.shape[1] + 16.0) * _EPS
    s = a * s_a - s_b
    s_err = tol * (a * gross[0] + gross[1])
    q_err = tol * (a * a * gross[2] + 2.0 * a * gross[3] + gross[4])
    q = ops.clip(a * a * q_a - 2.0 * a * q_b + q_c, 0.0, None) + q_err
    return bound(c1, h, ops.clip(s - s_err, 0.0, None), s + s_err, q, a), h


def _candidates(lo: Any, hi: Any, keep: Any, ops: NumpyOps) -> tuple[Any, Any]:
    """The fractional nodes whose count can exceed ``alpha (1 - 1e-6)`` at some level, packed to the
    left of ``(R, C)`` arrays of pmin, pmax (padding 1, 1: never counted).

    ``w(a) > a (1 - d)`` exactly for ``a > lo / (1 - (1 - d) (hi - lo))`` (lowered here for rounding).
    """
    place = ops.cumsum(keep, axis=1) - 1
    count = int(place[:, -1].max()) + 1 if place.shape[0] else 0
    slot = ops.where(keep, place, count)
    packed = []
    for ends in (lo, hi):
        out = ops.full((lo.shape[0], count + 1), 1.0)
        ops.put(out, slot, ends)
        packed.append(out[:, :count])
    return packed[0], packed[1]


def _score_levels(lo, hi, row, alpha, base, ones, statistic: ScanStatistic, ops: NumpyOps):
    """Exact best size at each given level ``alpha (L,)`` of row ``row (L,)``: ``(score, size, last)``.

    The reference sorts all of the level's fractional counts in descending order and scores every
    size ``base + k`` with ``N_alpha = base + (ones + w_1 + ... )`` accumulated in that order. Here
    only the counts ``w > alpha (1 - 1e-6)`` are sorted: the same prefix of that order, accumulated
    the same way, so the same floats. Past it every count is ``<= alpha (1 - 1e-6)``, and adding
    such a count lowers a positive statistic by a relative amount of order ``1 / N`` (>> rounding),
    so those sizes cannot be the maximum. ``size`` is the number of fractional counts taken (after
    the ``ones``); ``last`` the smallest count taken (1 when none).
    """
    num, shape = lo.shape[1], tuple(alpha.shape)  # candidate columns, levels
    score, size, last = ops.zeros(shape), ops.zeros(shape, "int"), ops.zeros(shape)
    step = max(1, ops.cells // max(num, 1))
    for begin in range(0, int(alpha.shape[0]), step):
        r, a = row[begin : begin + step], alpha[begin : begin + step, None]
        rows_lo, rows_hi = lo[r], hi[r]
        w = alpha_counts(a, rows_lo, rows_hi)
        keep = (rows_lo < a) & (a < rows_hi) & (w > a * (1.0 - BORDER))
        kept = ops.count_nonzero(keep, axis=1)
        order = ops.argsort(kept)  # levels with similar numbers of counts together: little padding
        for part in range(0, int(order.shape[0]), _PART):
            at = order[part : part + _PART]
            got = _score_sorted(w[at], keep[at], int(kept[at[-1]]), a[at], base[begin + at], ones[begin + at],
                                statistic, ops)
            score[begin + at], size[begin + at], last[begin + at] = got
    return score, size, last


def _score_sorted(w, keep, k: int, a, base, ones, statistic: ScanStatistic, ops: NumpyOps):
    """:func:`_score_levels` for levels ``a (L, 1)`` with at most ``k`` kept counts ``w (L, C)``."""
    taken = -ops.smallest(ops.where(keep, -w, 2.0), k) if k else ops.zeros((keep.shape[0], 0))
    real = taken >= 0.0  # padding (levels with fewer kept counts) is -2
    first = ops.to_float(ones[:, None])
    gained = ops.cumsum(ops.concatenate([first, ops.where(real, taken, 0.0)], axis=1), axis=1)
    sizes = base[:, None] + ones[:, None] + ops.arange(k + 1)[None, :]
    allowed = ops.concatenate([first >= 0.0, real], axis=1)  # size 0 (the ones alone) always
    scores = ops.where(allowed, statistic(base[:, None] + gained, sizes, a), -np.inf)
    best = ops.argmax(scores, axis=1)
    padded = ops.concatenate([ops.full((keep.shape[0], 1), 1.0), taken], axis=1)
    return ops.take(scores, best[:, None])[:, 0], best, ops.take(padded, best[:, None])[:, 0]


def scan_range_rows(lo: Any, hi: Any, statistic: ScanStatistic, bound: ScanBound, alpha_max: float,
                    levels: Levels, ops: NumpyOps = NUMPY) -> tuple[Any, Any, Any]:
    """Per-row LTSS of ranges ``lo, hi (R, J)`` over each row's grid (module docstring), exactly as
    the reference's row loop: the best lower bound first, then the handfuls of levels whose upper
    bound beats it, in order, a later maximum replacing an earlier one only when strictly larger.
    ``levels``: the :func:`shared_levels` of these rows. Returns ``score (R,)``, ``alpha (R,)`` and
    the best subset's node mask ``(R, J)``."""
    grid = _grid(lo, hi, levels, ops)
    m, full, positive = _counts(grid, ops)
    a = ops.where(grid.valid, grid.alphas, alpha_max)
    c1 = m + full
    lower = ops.where(grid.valid, statistic(c1, c1, a), -np.inf)
    upper = ops.where(grid.valid, statistic(m + positive, m + positive, a), -np.inf)
    best_at = ops.argmax(lower, axis=1)[:, None]
    best = ops.take(lower, best_at)[:, 0]
    taken, alpha, last = ops.take(full, best_at)[:, 0], ops.take(a, best_at)[:, 0], ops.full((lo.shape[0],), 1.0)
    todo = upper > best[:, None]
    # without a helpful count every size past the ones lowers the statistic: the lower bound is exact
    near, onset = near_helpful(lo, hi, alpha_max, ops)
    near = near & grid.frac
    busy = ops.nonzero(todo.any(axis=1) & near.any(axis=1))[0]
    if busy.shape[0]:
        sub = grid.rows(busy)
        found = _exact_levels(lo[busy], hi[busy], sub, (near[busy], onset[busy]), a[busy], m[busy],
                              full[busy], todo[busy], best[busy], (statistic, bound), ops)
        if found is not None:
            wins, score, level_alpha, count, least = found
            rows = busy[wins]
            best[rows], alpha[rows], taken[rows], last[rows] = score, level_alpha, count, least
    return _row_result(lo, hi, grid.frac, best, alpha, taken, last, alpha_max, ops)


def _exact_levels(lo, hi, grid: _Grid, near: tuple, a, m, full, todo, best, scan: tuple, ops: NumpyOps):
    """Score exactly the ``todo`` levels that the bound cannot rule out; ``(rows, score, alpha, taken,
    last)`` of the rows where one beats ``best``, or None.

    ``todo`` levels go in handfuls of ``_HANDFUL`` as in the reference: a level's count of ones is
    split at its handful's first level. Each row first scores its ``_LEADS`` levels of highest bound,
    one at a time, and rules out the levels whose bound falls short of the best score so far; the
    rest are scored together. A ruled-out level scores less than that best, so it can neither win
    nor tie, and the winner is the first maximum in level order, as in the reference.
    """
    (statistic, bound), (rows, width) = scan, todo.shape
    bounds, h = _level_bounds(lo, hi, grid, near, a, m + full, bound, ops)
    slack = _SLACK * (abs(best)[:, None] + ops.to_float(m + full) + h + 1.0)
    column = ops.arange(width)[None, :]
    handful = ops.cummax(ops.where(todo & ((ops.cumsum(todo, axis=1) - 1) % _HANDFUL == 0), column, 0))
    pending = todo & (bounds + slack >= best[:, None])
    if not bool(pending.any()):
        return None
    lo_c, hi_c = _candidates(lo, hi, near[0], ops)
    scores, sizes, lasts = ops.full(todo.shape, -np.inf), ops.zeros(todo.shape, "int"), ops.zeros(todo.shape)
    reached = best
    for lead in range(_LEADS + 1):
        if lead < _LEADS:  # each row's most promising pending level
            row = ops.nonzero(pending.any(axis=1))[0]
            level = ops.argmax(ops.where(pending[row], bounds[row], -np.inf), axis=1)
        else:
            row, level = ops.nonzero(pending)
        if not row.shape[0]:
            break
        below = full[row, handful[row, level]]
        score, size, least = _score_levels(lo_c, hi_c, row, a[row, level], m[row, level] + below,
                                           full[row, level] - below, statistic, ops)
        scores[row, level], sizes[row, level], lasts[row, level] = score, size, least
        pending[row, level] = False
        reached = ops.maximum(reached, ops.segment_max(score, row, rows, -np.inf))
        pending = pending & (bounds + slack >= reached[:, None])
    top = ops.amax(scores, axis=1)
    wins = ops.nonzero(top > best)[0]
    first = ops.argmax(ops.to_int(scores[wins] == top[wins][:, None]), axis=1)  # the first level at the top
    return wins, top[wins], a[wins, first], full[wins, first] + sizes[wins, first], lasts[wins, first]


def _row_result(lo, hi, frac, best, alpha, taken, last, alpha_max: float, ops: NumpyOps):
    """``(score, alpha, nodes)`` from each row's best level: the nodes counting 1 there, then the
    ``taken`` largest fractional counts, ties to the lower index (the reference's stable argsort)."""
    scored = best > 0
    alpha = ops.where(scored, alpha, alpha_max)
    counts = ops.where(frac, alpha_counts(alpha[:, None], lo, hi), -1.0)
    above = counts > last[:, None]
    level = counts == last[:, None]
    need = taken - ops.count_nonzero(above, axis=1)
    chosen = above | (level & (ops.cumsum(level, axis=1) <= need[:, None]))
    nodes = ops.where(frac, chosen, hi <= alpha[:, None]) & scored[:, None]
    return ops.where(scored, best, 0.0), alpha, nodes
