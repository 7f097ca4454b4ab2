"""Pareto analytics of two objectives: non-domination ranks, 2-D hypervolume, contributions, knee.

Everything works on *minimisation* points ``(n, 2)``; :func:`to_minimization` flips maximised
objectives (``directions`` of ``"min"`` / ``"max"``). A point dominates another when it is no worse
in both objectives and strictly better in one. The hypervolume is the area dominated by the
points and bounded by the reference point ``ref`` (points not strictly better than ``ref`` in both
objectives add nothing); it is recorded next to every value it produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def to_minimization(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    sign = np.array([1.0 if d == "min" else -1.0 for d in directions])
    if any(d not in ("min", "max") for d in directions):
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    return points * sign


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def non_domination_ranks(points: np.ndarray) -> np.ndarray:
    """Rank ``(n,)`` of each minimisation point: 0 for the front, 1 for the front of the rest, ..."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    le = np.all(points[:, None, :] <= points[None, :, :], axis=2)
    lt = np.any(points[:, None, :] < points[None, :, :], axis=2)
    dominated_by = (le & lt).T  # dominated_by[i, j]: j dominates i
    ranks = np.full(n, -1, dtype=np.int64)
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        front = remaining & ~(dominated_by[:, remaining].any(axis=1))
        ranks[front] = rank
        remaining &= ~front
        rank += 1
    return ranks


def hypervolume_2d(points: np.ndarray, ref: Sequence[float]) -> float:
    """Area dominated by minimisation points ``(n, 2)`` and bounded by ``ref``."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    points = points[(points[:, 0] < ref[0]) & (points[:, 1] < ref[1])]
    if len(points) == 0:
        return 0.0
    points = points[np.lexsort((points[:, 1], points[:, 0]))]  # by f1, then f2
    # the staircase: points that lower the best f2 seen so far, in increasing f1
    prior_best = np.minimum.accumulate(np.concatenate([[np.inf], points[:-1, 1]]))
    stairs = points[points[:, 1] < prior_best]
    right = np.append(stairs[1:, 0], ref[0])
    return float(((right - stairs[:, 0]) * (ref[1] - stairs[:, 1])).sum())


def hypervolume_contributions(points: np.ndarray, ref: Sequence[float]) -> np.ndarray:
    """Exclusive contribution ``(n,)``: how much the hypervolume drops without each point."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    total = hypervolume_2d(points, ref)
    keep = np.ones(len(points), dtype=bool)
    out = np.empty(len(points))
    for i in range(len(points)):
        keep[i] = False
        out[i] = total - hypervolume_2d(points[keep], ref)
        keep[i] = True
    return out


def hypervolume_history(points: np.ndarray, ref: Sequence[float]) -> np.ndarray:
    """Hypervolume of the first ``k`` points, for ``k = 1..n`` (points in trial order)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.array([hypervolume_2d(points[: k + 1], ref) for k in range(len(points))])


def default_reference(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """The nadir of the points pushed out by ``margin`` of each objective's range."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    high, low = points.max(axis=0), points.min(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return high + margin * span


def knee_index(points: np.ndarray, ranks: np.ndarray) -> int | None:
    """The front point farthest from the line joining the front's two extremes (normalised).

    With one or two front points, the one with the smallest sum of normalised objectives.
    """
    front = np.flatnonzero(ranks == 0)
    if len(front) == 0:
        return None
    f = points[front]
    low, high = f.min(axis=0), f.max(axis=0)
    norm = (f - low) / np.where(high > low, high - low, 1.0)
    if len(front) <= 2:
        return int(front[np.argmin(norm.sum(axis=1))])
    a, b = norm[np.argmin(norm[:, 0])], norm[np.argmin(norm[:, 1])]
    direction = (b - a) / max(np.linalg.norm(b - a), 1e-12)
    rel = norm - a
    distance = np.abs(rel[:, 0] * direction[1] - rel[:, 1] * direction[0])
    return int(front[np.argmax(distance)])


@dataclass(frozen=True)
class ParetoAnalysis:
    """Per-point results (aligned with the input) and the reference point they used."""

    ranks: np.ndarray
    contributions: np.ndarray
    knee: int | None
    reference: np.ndarray  # in the objectives' own directions
    hypervolume: float
    history: np.ndarray


def analyse(values: np.ndarray, directions: Sequence[str], reference: Sequence[float] | None = None) -> ParetoAnalysis:
    """Pareto analysis of ``values (n, 2)`` given in their own directions (trial order)."""
    points = to_minimization(values, directions)
    ref_min = (
        default_reference(points) if reference is None else to_minimization(np.asarray([reference]), directions)[0]
    )
    ranks = non_domination_ranks(points)
    return ParetoAnalysis(
        ranks=ranks,
        contributions=hypervolume_contributions(points, ref_min),
        knee=knee_index(points, ranks),
        reference=to_minimization(ref_min[None, :], directions)[0],
        hypervolume=hypervolume_2d(points, ref_min),
        history=hypervolume_history(points, ref_min),
    )
