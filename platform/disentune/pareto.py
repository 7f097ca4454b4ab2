"""Pareto analytics of k >= 2 objectives: non-domination ranks, hypervolume, contributions, knee.

Shared by the search and the reports stages (pure numpy plus the maintained ``moocore`` library).
Everything works on *minimisation* points ``(n, k)``; :func:`to_minimization` flips maximised
objectives (``directions`` of ``"min"`` / ``"max"``, one per column). A point dominates another
when it is no worse in every objective and strictly better in at least one.

The hypervolume (the "size of the space covered", S-metric, of Zitzler & Thiele 1998, PPSN V, and
1999, "Multiobjective evolutionary algorithms: a comparative case study and the strength Pareto
approach", IEEE TEC 3(4)) is the Lebesgue measure of the union of the boxes ``[p, ref]`` over the
points ``p``: the region they dominate, bounded by the reference point ``ref``. Points not strictly
better than ``ref`` in every objective add nothing. It is computed by ``moocore.hypervolume``
(O(n log n) for k = 2 and 3: Fonseca, Paquete & Lopez-Ibanez 2006; Guerreiro & Fonseca 2017), not
by hand, except for the exact incremental 2-D staircase of :func:`hypervolume_history`. The
reference point is recorded next to every value it produces, since hypervolumes are only
comparable under the same reference.

All inputs must be finite; a non-finite value, a wrong shape or fewer than two objectives is a
``ValueError`` naming what was wrong.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import moocore
import numpy as np

DIRECTIONS = ("min", "max")


def _points(points: np.ndarray | Sequence[Sequence[float]], k: int | None = None,
            name: str = "points") -> np.ndarray:
    """``points`` as a finite float64 ``(n, k)`` array (an empty input becomes ``(0, k)``)."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0 and k is not None:
        return arr.reshape(0, k)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n points, k objectives), got shape {arr.shape}")
    if k is not None and arr.shape[1] != k:
        raise ValueError(f"{name} have {arr.shape[1]} objectives, expected {k}")
    if arr.shape[1] < 2:
        raise ValueError(f"Pareto analytics need at least 2 objectives, {name} have {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr).all(axis=1)][0].tolist()}")
    return arr


def _reference(ref: np.ndarray | Sequence[float]) -> np.ndarray:
    """``ref`` as a finite float64 ``(k,)`` vector with k >= 2."""
    r = np.asarray(ref, dtype=np.float64)
    if r.ndim != 1 or len(r) < 2:
        raise ValueError(f"the reference point must be a vector of k >= 2 values, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"the reference point must be finite, got {r.tolist()}")
    return r


def to_minimization(values: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """``values (..., k)`` in their own directions -> minimisation values (maximised columns negated).

    Applying it twice with the same directions gives back the input, so it also maps a
    minimisation point (a reference, say) back to the objectives' own directions.
    """
    if any(d not in DIRECTIONS for d in directions):
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != len(directions):
        raise ValueError(f"values of shape {arr.shape} do not have one column per direction {list(directions)}")
    return arr * np.array([1.0 if d == "min" else -1.0 for d in directions])


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether minimisation point ``a (k,)`` Pareto-dominates ``b (k,)``."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_domination_ranks(points: np.ndarray) -> np.ndarray:
    """Rank ``(n,)`` of each minimisation point ``(n, k)``: 0 for the front, 1 for the front of the
    rest, ... (non-dominated sorting, Deb et al. 2002). Duplicates share a rank."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(moocore.pareto_rank(_points(arr)), dtype=np.int64)


def hypervolume(points: np.ndarray, ref: np.ndarray | Sequence[float]) -> float:
    """Hypervolume of minimisation points ``(n, k)`` bounded by ``ref (k,)`` (Zitzler & Thiele)."""
    r = _reference(ref)
    p = _points(points, len(r))
    p = p[np.all(p < r, axis=1)]
    return float(moocore.hypervolume(p, ref=r)) if len(p) else 0.0


def hypervolume_contributions(points: np.ndarray, ref: np.ndarray | Sequence[float]) -> np.ndarray:
    """Exclusive contribution ``(n,)`` of each point: ``hypervolume(points) - hypervolume(points
    without it)``.

    Only front points can contribute; a duplicated point contributes 0 (its twin covers the same
    box). The definition is the exact one: removing a front point ``p`` brings back the points that
    only ``p`` dominated, which lowers ``p``'s contribution. moocore gives the contributions of the
    front alone in O(n log n) (k = 2, 3); each front point that solely dominates others gets one
    more hypervolume of the front without it plus the points it alone dominated.
    """
    r = _reference(ref)
    p = _points(points, len(r))
    out = np.zeros(len(p))
    inside = np.flatnonzero(np.all(p < r, axis=1))  # outside points can neither add nor dominate
    if len(inside) == 0:
        return out
    q = p[inside]
    on_front = np.asarray(moocore.is_nondominated(q, keep_weakly=True), dtype=bool)
    front, rest = q[on_front], q[~on_front]
    contrib = np.asarray(moocore.hv_contributions(front, ref=r), dtype=np.float64)
    if len(rest):
        # how many front points dominate each dominated point, and (when exactly one) which
        count = np.zeros(len(rest), dtype=np.int64)
        owner = np.full(len(rest), -1, dtype=np.int64)
        for i, f in enumerate(front):
            dom = np.all(f <= rest, axis=1) & np.any(f < rest, axis=1)
            count += dom
            owner[dom] = i
        owner[count != 1] = -1
        total = float(moocore.hypervolume(front, ref=r))
        keep = np.ones(len(front), dtype=bool)
        for i in np.unique(owner[owner >= 0]):
            keep[i] = False
            without = np.concatenate([front[keep], rest[owner == i]])
            contrib[i] = total - float(moocore.hypervolume(without, ref=r))
            keep[i] = True
    out[inside[on_front]] = contrib
    return out


def _history_2d(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Exact incremental 2-D history: the prefix's front is a staircase kept sorted (f1 rising, f2
    falling); a new non-dominated point adds the area of its box between its neighbours minus the
    steps it removes. O(log m) search plus the removed steps per point."""
    xs: list[float] = []
    ys: list[float] = []
    out = np.zeros(len(p))
    value = 0.0
    for j, (x, y) in enumerate(p.tolist()):
        if x < r[0] and y < r[1]:
            i = bisect.bisect_right(xs, x)
            if not (i > 0 and ys[i - 1] <= y):  # not weakly dominated by the front
                lo = hi = bisect.bisect_left(xs, x)
                while hi < len(xs) and ys[hi] >= y:  # the steps the new point dominates
                    hi += 1
                right = xs[hi] if hi < len(xs) else float(r[0])
                top = ys[lo - 1] if lo > 0 else float(r[1])
                gained = (right - x) * (top - y)
                for t in range(lo, hi):
                    gained -= ((xs[t + 1] if t + 1 < hi else right) - xs[t]) * (top - ys[t])
                xs[lo:hi] = [x]
                ys[lo:hi] = [y]
                value += gained
        out[j] = value
    return out


def hypervolume_history(points: np.ndarray, ref: np.ndarray | Sequence[float]) -> np.ndarray:
    """Hypervolume ``(n,)`` of the first ``j`` points for ``j = 1..n`` (points in trial order).

    Incremental: the front of the prefix is kept, and a point outside ``ref`` or weakly dominated
    by that front leaves the value unchanged. For k = 2 a new front point adds its exclusive area
    (a running sum, O(n log n) searches in all); for k >= 3 it costs one moocore hypervolume of the
    new front (O(m log m) for a front of m points, k = 3), so each value is that front's own.
    """
    r = _reference(ref)
    p = _points(points, len(r))
    if len(r) == 2:
        return _history_2d(p, r)
    out = np.zeros(len(p))
    front = np.zeros((0, len(r)))
    value = 0.0
    for j, x in enumerate(p):
        if np.all(x < r) and not np.any(np.all(front <= x, axis=1)):
            front = np.concatenate([front[~np.all(x <= front, axis=1)], x[None, :]])
            value = float(moocore.hypervolume(front, ref=r))
        out[j] = value
    return out


def default_reference(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """The nadir ``(k,)`` of minimisation points ``(n, k)`` pushed out by ``margin`` of each
    objective's range (by ``margin * max(|value|, 1)`` where the range is zero)."""
    p = _points(points)
    if len(p) == 0:
        raise ValueError("a default reference point needs at least one point")
    high, low = p.max(axis=0), p.min(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return high + margin * span


def knee_index(points: np.ndarray, ranks: np.ndarray) -> int | None:
    """Index of the knee: the front point farthest from the hyperplane through the front's extreme
    points, in the space where each objective is normalised to [0, 1] over the front.

    This is the distance from the hyperplane through the individual minima (the convex hull of
    individual minima, CHIM) of Das (1999, "On characterizing the 'knee' of the Pareto curve based
    on normal-boundary intersection", Struct. Optim. 18), in the sense of the knees of Branke, Deb,
    Dierolf & Osswald (2004, "Finding knees in multi-objective optimization", PPSN VIII); the
    distance is unsigned, as in the 2-D line rule the reports have always used. The extreme point
    of objective ``i`` is the front point best in ``i`` (ties: the smaller sum of normalised
    objectives, then the first). For k = 2 the hyperplane is the line joining the two extremes.

    Fallback (tiny or degenerate fronts): with at most k front points, or when the k extremes are
    affinely dependent and span no hyperplane (one point best in two objectives), the knee is the
    front point with the smallest sum of normalised objectives (closest to the ideal point in L1;
    the first on ties). ``None`` when nothing has rank 0.

    ``points (n, k)`` are minimisation points, ``ranks (n,)`` their non-domination ranks.
    """
    front = np.flatnonzero(np.asarray(ranks) == 0)
    if len(front) == 0:
        return None
    f = np.asarray(points, dtype=np.float64)[front]
    k = f.shape[1]
    low, high = f.min(axis=0), f.max(axis=0)
    norm = (f - low) / np.where(high > low, high - low, 1.0)
    if len(front) <= k:
        return int(front[np.argmin(norm.sum(axis=1))])
    if k == 2:
        a, b = norm[np.argmin(norm[:, 0])], norm[np.argmin(norm[:, 1])]
        direction = (b - a) / max(np.linalg.norm(b - a), 1e-12)
        rel = norm - a
        distance = np.abs(rel[:, 0] * direction[1] - rel[:, 1] * direction[0])
        return int(front[np.argmax(distance)])
    total = norm.sum(axis=1)
    extremes = norm[[np.lexsort((total, norm[:, i]))[0] for i in range(k)]]
    edges = extremes[1:] - extremes[0]  # (k - 1, k)
    _, singular, vt = np.linalg.svd(edges, full_matrices=True)
    if singular.min() <= 1e-9 * max(1.0, singular.max()):
        return int(front[np.argmin(total)])
    distance = np.abs((norm - extremes[0]) @ vt[-1])  # vt[-1]: the unit normal of the hyperplane
    return int(front[np.argmax(distance)])


@dataclass(frozen=True)
class ParetoAnalysis:
    """Per-point results aligned with the input ``(n,)`` and the reference point ``(k,)`` used."""

    ranks: np.ndarray  # (n,) non-domination rank, 0 = on the front
    contributions: np.ndarray  # (n,) exclusive hypervolume contribution
    knee: int | None  # index of the knee point, None when there are no points
    reference: np.ndarray  # (k,) in the objectives' own directions
    hypervolume: float  # of all n points
    history: np.ndarray  # (n,) hypervolume of the first j points, j = 1..n


def analyse(values: np.ndarray, directions: Sequence[str],
            reference: Sequence[float] | None = None) -> ParetoAnalysis:
    """Pareto analysis of ``values (n, k)`` given in their own ``directions`` (trial order).

    ``reference (k,)`` is in the objectives' own directions too; by default it is
    :func:`default_reference` of the points (which needs n >= 1).
    """
    k = len(directions)
    points = to_minimization(_points(values, k, name="values"), directions)
    ref_min = default_reference(points) if reference is None else to_minimization(_reference(reference), directions)
    ranks = non_domination_ranks(points)
    return ParetoAnalysis(
        ranks=ranks,
        contributions=hypervolume_contributions(points, ref_min),
        knee=knee_index(points, ranks),
        reference=to_minimization(ref_min, directions),
        hypervolume=hypervolume(points, ref_min),
        history=hypervolume_history(points, ref_min),
    )
