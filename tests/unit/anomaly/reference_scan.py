"""Today's per-sample subset scan and p-value counts, verbatim (as of commit 645e940), as a reference.

These are the row-by-row implementations that ``disentune.anomaly.subset_scan.scan_samples`` and
``disentune.anomaly.pvalues.tail_counts`` replaced: the new code must return identical scores,
alphas and node masks (``test_scan_identity``), and ``bench/subset_scan_speed.py`` times them side by
side. Copied function by function from the modules named in each section; only the imports differ.
Do not "improve" this file: its value is that it is the old code.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from disentune.anomaly.scan_statistics import ScanStatistic
from disentune.errors import ConfigError

_CHUNK_CELLS = 1 << 22


# ---- disentune/anomaly/scan_statistics.py ----
def _broadcast(n_alpha, n, alpha) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, size, a = np.broadcast_arrays(
        np.asarray(n_alpha, dtype=float), np.asarray(n, dtype=float), np.asarray(alpha, dtype=float)
    )
    return x, size, a, np.where(size > 0, size, 1.0)


def berk_jones(n_alpha, n, alpha) -> np.ndarray:
    """``N * KL(N_alpha / N || alpha)`` where ``N_alpha / N > alpha``, else 0 (broadcast shapes)."""
    x, size, a, safe = _broadcast(n_alpha, n, alpha)
    x = np.clip(x, 0.0, size)  # rounding in summed expected counts must not leave [0, N]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = xlogy(x, x / (safe * a)) + xlogy(size - x, (size - x) / (safe * (1.0 - a)))
    return np.where((size > 0) & (x > size * a), value, 0.0)


def higher_criticism(n_alpha, n, alpha) -> np.ndarray:
    """``(N_alpha - N alpha) / sqrt(N alpha (1 - alpha))``, 0 when ``N = 0`` (broadcast shapes)."""
    x, size, a, safe = _broadcast(n_alpha, n, alpha)
    value = (x - size * a) / np.sqrt(safe * a * (1.0 - a))
    return np.where(size > 0, value, 0.0)


def kolmogorov_smirnov(n_alpha, n, alpha) -> np.ndarray:
    """``(N_alpha - N alpha) / sqrt(N)``, 0 when ``N = 0`` (broadcast shapes)."""
    x, size, a, safe = _broadcast(n_alpha, n, alpha)
    return np.where(size > 0, (x - size * a) / np.sqrt(safe), 0.0)


STATISTICS = {"berk_jones": berk_jones, "higher_criticism": higher_criticism, "kolmogorov_smirnov": kolmogorov_smirnov}


def alpha_counts(alpha, pmin, pmax=None) -> np.ndarray:
    """Expected indicator ``n_alpha`` of each p-value range at level ``alpha`` (broadcast shapes).

    Point p-values (``pmax`` None or equal to ``pmin``) give ``1[p <= alpha]``; ranges give the
    fraction of ``[pmin, pmax]`` that lies at or below ``alpha``.
    """
    a = np.asarray(alpha, dtype=float)
    lo = np.asarray(pmin, dtype=float)
    hi = lo if pmax is None else np.asarray(pmax, dtype=float)
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((a - lo) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    return np.where(width > 0, frac, (lo <= a).astype(float))


# ---- disentune/anomaly/ltss.py ----
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


# ---- disentune/anomaly/subset_scan.py ----
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
):
    """Score each sample (row of ``(n, J)`` p-value ranges) by its most anomalous node subset."""
    lo, hi = _ranges(pmin, pmax)
    stat, alpha_max = STATISTICS[statistic], _check_alpha_max(alpha_max)
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
    return score, alpha, nodes.sum(axis=1), nodes  # SampleScan's fields, in order


# ---- disentune/anomaly/pvalues.py (Background.sorted_by_node is the (J, n) sorted background) ----
def tail_counts(test: np.ndarray, background) -> tuple[np.ndarray, np.ndarray]:
    """``(#{b < x}, #{b <= x})`` per test value: two int64 arrays ``(m, J)``.

    ``test`` is ``(m, J)``; ``background`` a :class:`Background` or raw activations ``(n, J)``. When
    no test value ties a background value the two counts are equal and the same array is returned
    twice.
    """
    bg = background
    x = np.asarray(test)
    if x.ndim != 2 or x.shape[1] != bg.num_nodes:
        raise ValueError(f"test activations must be (m, {bg.num_nodes}); got {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("test activations contain NaN")
    xt = np.ascontiguousarray(x.T)  # (J, m): one contiguous row per node
    less = np.empty(xt.shape, dtype=np.int64)
    for j, column in enumerate(bg.sorted_by_node):
        less[j] = np.searchsorted(column, xt[j], side="left")
    # #{b <= x} differs from #{b < x} only where x ties a background value: search those nodes again
    flat_index = np.minimum(less, bg.n - 1) + (np.arange(bg.num_nodes) * bg.n)[:, None]
    probe = np.take(bg.sorted_by_node.reshape(-1), flat_index)
    tied_nodes = np.flatnonzero(((probe == xt) & (less < bg.n)).any(axis=1))
    less_t = less.T.copy()  # a copy even where the transpose is already contiguous (J = 1)
    if len(tied_nodes) == 0:
        return less_t, less_t
    for j in tied_nodes:
        less[j] = np.searchsorted(bg.sorted_by_node[j], xt[j], side="right")
    return less_t, np.ascontiguousarray(less.T)


def empirical_pvalues(
    test: np.ndarray,
    background,
    *,
    tails: int = 1,
    convention: str = "point",
):
    """Empirical p-value ranges of ``test (m, J)`` against ``background`` (``(n, J)`` or sorted).

    ``tails=1`` is the upper tail (large activations are anomalous), ``tails=2`` doubles the smaller
    tail; see the module docstring for the exact formulas of each ``convention``.
    """
    if tails not in (1, 2):
        raise ConfigError(f"tails must be 1 or 2; got {tails!r}")
    if convention not in ("point", "fgss"):
        raise ConfigError(f"unknown p-value convention {convention!r}")
    bg = background
    less, less_equal = tail_counts(test, bg)
    untied = less_equal is less
    n, shift = bg.n, 1 if convention == "point" else 0
    denom = float(n + 1)
    upper_max = (n + 1 - less) / denom  # #{b >= x} + 1
    point = untied and convention == "point"  # then pmin == pmax: share one array
    upper_min = upper_max if point else (n + shift - less_equal) / denom  # #{b > x} (+ 1)
    if tails == 1:
        return upper_min, upper_max
    lower_max = (less_equal + 1) / denom  # #{b <= x} + 1
    lower_min = lower_max if point else (less + shift) / denom  # #{b < x} (+ 1)
    pmax = np.minimum(1.0, 2.0 * np.minimum(upper_max, lower_max))
    pmin = pmax if point else np.minimum(1.0, 2.0 * np.minimum(upper_min, lower_min))
    return pmin, pmax
