"""Multi-objective asynchronous successive halving (MO-ASHA): the pure decision core, no Ray.

Asynchronous successive halving (ASHA; Li, Jamieson, Rostamizadeh, Gonina, Ben-tzur, Hardt,
Recht & Talwalkar 2020, "A System for Massively Parallel Hyperparameter Tuning", MLSys) judges a
trial whenever it reaches a *rung*, a budget ``min_budget * eta**k``, against the trials already
recorded at that rung, without waiting for a full cohort. MO-ASHA (Schmucker, Donini, Zafar,
Salinas & Archambeau 2021, "Multi-objective Asynchronous Successive Halving", arXiv:2106.12639;
Syne Tune's ``MOASHA`` is the reference implementation) replaces ASHA's scalar ranking by a
multi-objective one:

1. **Non-dominated sorting** (Deb et al. 2002): the recorded points are peeled into fronts
   F_0, F_1, ... (F_0 the non-dominated points, F_1 those non-dominated once F_0 is removed, ...;
   :func:`disentune.pareto.non_domination_ranks`). Every point of F_i ranks before every point
   of F_{i+1}.
2. **Epsilon-net inside a front** (Schmucker et al. 2021, after Salinas, Perrone, Archambeau &
   Cruchant 2021, and Clarkson's farthest-first traversal, 2006): the points of one front, in
   minimisation space, are ordered greedily. The first is the point with the smallest value of
   the *first* objective (lowest index on ties); each next one is the remaining point whose
   Euclidean distance to the nearest already-ordered point is largest (lowest index on ties).
   So the order starts at one extreme of the front and keeps picking the point that covers the
   largest gap, and a point crowded by ordered neighbours comes late. Distances are taken on the
   raw objective values (as Syne Tune does; no normalisation). Points are indexed in arrival
   order at the rung, the new trial last.
3. **Promotion rule** (Syne Tune's): with ``n`` points at the rung (the trials recorded there
   plus the arriving one) and ``r`` the arriving trial's 0-based position in that order, the
   trial continues iff ``r / n <= 1 / eta`` (``r * eta <= n``); the first trial at a rung always
   continues. E.g. eta = 3: positions 0 of 2, 0..1 of 3 to 5, 0..2 of 6 to 8, 0..3 of 9. The
   trial is recorded at the rung either way, and a stopped trial stays recorded (it is a peer
   of later arrivals, as in ASHA).

Where Syne Tune's code and this description differ, this module follows the description (the
algorithm of the paper): Syne Tune's ``nondominated_sort`` indexes a front with the epsilon-net's
*ranks* as if they were its *order*, and its bracket then reads the sorted *indices* as
*priorities* (so ``ranks[-1]`` is the index of the last-ordered point, not the new trial's
position). The two confusions cancel when all points of a rung lie on one front, and the
decisions also coincide when a rung holds at most 3 points; otherwise they can differ, and Syne
Tune can then stop a trial that dominates every peer (3 peers in a chain, the new trial better
than all of them: its ``ranks[-1]`` is 2 / 4 > 1/3).

Brackets (asynchronous Hyperband, Li et al. 2020): bracket ``b`` has rungs
``min_budget * eta**(b + k)`` below ``max_budget``; each bracket keeps its own rungs. A new trial
joins bracket ``b`` with probability proportional to ``exp(n_b)``, ``n_b`` the bracket's number
of rungs (Syne Tune's and Ray Tune's softmax), drawn from the core's own seeded generator.

Budgets are counted in one unit (the sweep counts images seen). Rung lookup: a result at budget
``t`` concerns the highest rung with budget ``<= t``; if the trial is already recorded at that
rung or a higher one it simply continues (the decision was taken), and a result that jumps past
several rungs is recorded at the highest of them only. A result at or beyond ``max_budget`` is
recorded (so later trials have peers) but never stops the trial: it has finished its budget.
Results whose values are not all finite are not recorded and continue: the decision waits for
the trial's next result with finite values at or past the rung.

Replicated trials (k seeds of one configuration): report the median of each objective over the
seeds at the same budget; the scheduler ranks whatever values it is given and needs nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from disentune.pareto import DIRECTIONS, non_domination_ranks, to_minimization

CONTINUE: Literal["CONTINUE"] = "CONTINUE"
STOP: Literal["STOP"] = "STOP"
Decision = Literal["CONTINUE", "STOP"]


def epsilon_net_order(points: np.ndarray) -> np.ndarray:
    """Farthest-first (epsilon-net) order ``(m,)`` of the minimisation points ``(m, k)`` of one front.

    ``order[0]`` is the point with the smallest first objective (the first such on ties);
    ``order[j]`` maximises ``min_{i<j} ||p - points[order[i]]||_2`` over the points not yet
    ordered (the first such on ties). Schmucker et al. 2021; Clarkson 2006, "Nearest-neighbor
    searching and metric space dimensions".
    """
    p = np.asarray(points, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(np.argmin(p[:, 0]))
    order = [first]
    chosen = np.zeros(m, dtype=bool)
    chosen[first] = True
    nearest = np.linalg.norm(p - p[first], axis=1)  # distance to the nearest ordered point
    for _ in range(m - 1):
        nxt = int(np.argmax(np.where(chosen, -np.inf, nearest)))
        order.append(nxt)
        chosen[nxt] = True
        nearest = np.minimum(nearest, np.linalg.norm(p - p[nxt], axis=1))
    return np.asarray(order, dtype=np.int64)


def priority_order(points: np.ndarray) -> np.ndarray:
    """Indices ``(n,)`` of the minimisation points ``(n, k)``, best first: front by front
    (non-dominated sorting), each front in :func:`epsilon_net_order` (its points taken in
    ascending index)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = non_domination_ranks(p)
    out: list[np.ndarray] = []
    for r in range(int(ranks.max()) + 1):
        front = np.flatnonzero(ranks == r)
        out.append(front[epsilon_net_order(p[front])])
    return np.concatenate(out)


@dataclass(frozen=True)
class Stop:
    """Where a trial was stopped: its bracket, rung index, the rung's budget and its values there
    (in the objectives' own directions)."""

    bracket: int
    rung: int
    budget: float
    values: tuple[float, ...]


def rung_budgets(min_budget: float, max_budget: float, reduction_factor: float,
                 bracket: int) -> tuple[float, ...]:
    """Budgets ``min_budget * eta**(bracket + k)``, k = 0, 1, ..., that are below ``max_budget``
    (integers when ``min_budget`` and ``eta`` are)."""
    out = []
    j = bracket
    while (budget := min_budget * reduction_factor**j) < max_budget:
        out.append(budget)
        j += 1
    return tuple(out)


class SuccessiveHalving:
    """MO-ASHA's bookkeeping and decisions (see the module docstring for the rules).

    ``directions``: one ``"min"`` / ``"max"`` per objective (k >= 2); values are passed in that
    order and in those directions. ``min_budget``: the first rung; ``max_budget``: the full budget
    (no rung at or above it); ``reduction_factor`` eta > 1; ``brackets`` >= 1, at most the number
    of rungs of bracket 0; ``seed`` for the bracket draws.

    State is plain Python and numpy (picklable): per bracket and rung the recorded values by trial
    id in arrival order, each trial's bracket, and :attr:`stopped`.
    """

    def __init__(self, *, directions: Sequence[str], min_budget: float, max_budget: float,
                 reduction_factor: float = 3, brackets: int = 1, seed: int = 0) -> None:
        directions = tuple(directions)
        if len(directions) < 2 or any(d not in DIRECTIONS for d in directions):
            raise ValueError(f"directions must be 2 or more of 'min' / 'max', got {list(directions)}")
        if not (isinstance(min_budget, (int, float)) and math.isfinite(min_budget) and min_budget > 0):
            raise ValueError(f"min_budget must be a positive number, got {min_budget!r}")
        if not (isinstance(max_budget, (int, float)) and math.isfinite(max_budget) and max_budget > min_budget):
            raise ValueError(f"max_budget must be above min_budget = {min_budget!r}, got {max_budget!r}")
        if not (isinstance(reduction_factor, (int, float)) and math.isfinite(reduction_factor)
                and reduction_factor > 1):
            raise ValueError(f"reduction_factor must be above 1, got {reduction_factor!r}")
        most = len(rung_budgets(min_budget, max_budget, reduction_factor, 0))
        if not (isinstance(brackets, int) and 1 <= brackets <= most):
            raise ValueError(f"brackets must be an integer from 1 to {most} (the number of rungs "
                             f"min_budget * reduction_factor**k below max_budget), got {brackets!r}")
        self.directions = directions
        self.min_budget, self.max_budget = min_budget, max_budget
        self.reduction_factor = reduction_factor
        self.rungs: tuple[tuple[float, ...], ...] = tuple(
            rung_budgets(min_budget, max_budget, reduction_factor, b) for b in range(brackets))
        # [bracket][rung] -> {trial_id: values in own directions}, in arrival order
        self._recorded: list[list[dict[str, tuple[float, ...]]]] = [[{} for _ in r] for r in self.rungs]
        self._bracket: dict[str, int] = {}
        self.stopped: dict[str, Stop] = {}
        self._rng = np.random.default_rng(seed)

    # --- trials -------------------------------------------------------------------------------
    def add(self, trial_id: str, bracket: int | None = None) -> int:
        """Assign ``trial_id`` to a bracket (drawn unless given; kept if it already has one)."""
        if trial_id in self._bracket:
            return self._bracket[trial_id]
        if bracket is None:
            sizes = np.array([len(r) for r in self.rungs], dtype=np.float64)
            weights = np.exp(sizes - sizes.max())
            bracket = int(self._rng.choice(len(self.rungs), p=weights / weights.sum()))
        elif not 0 <= bracket < len(self.rungs):
            raise ValueError(f"bracket must be from 0 to {len(self.rungs) - 1}, got {bracket}")
        self._bracket[trial_id] = bracket
        return bracket

    def bracket_of(self, trial_id: str) -> int | None:
        return self._bracket.get(trial_id)

    def remove(self, trial_id: str) -> None:
        """Forget ``trial_id``'s records at every rung (an errored trial is nobody's peer); it keeps
        its bracket, so a retried trial is judged again in the same bracket."""
        for rungs in self._recorded:
            for recorded in rungs:
                recorded.pop(trial_id, None)
        self.stopped.pop(trial_id, None)

    def recorded(self, bracket: int, rung: int) -> dict[str, tuple[float, ...]]:
        """A copy of the values recorded at ``rung`` of ``bracket``, by trial id in arrival order."""
        return dict(self._recorded[bracket][rung])

    # --- results ------------------------------------------------------------------------------
    def _values(self, values: Sequence[float]) -> tuple[float, ...] | None:
        vals = tuple(float(v) for v in values)
        if len(vals) != len(self.directions):
            raise ValueError(f"expected {len(self.directions)} objective values, got {len(vals)}")
        return vals if all(math.isfinite(v) for v in vals) else None

    def _pending_rung(self, trial_id: str, budget: float) -> tuple[int, int] | None:
        """(bracket, rung) at which a result at ``budget`` is to be recorded, or None."""
        b = self.add(trial_id)
        below = [k for k, t in enumerate(self.rungs[b]) if t <= budget]
        if not below:
            return None
        k = below[-1]
        if any(trial_id in self._recorded[b][j] for j in range(k, len(self.rungs[b]))):
            return None  # already judged at this rung or beyond
        return b, k

    def on_result(self, trial_id: str, budget: float, values: Sequence[float]) -> Decision:
        """Decide on a result of ``trial_id`` at ``budget`` with ``values`` (own directions)."""
        vals = self._values(values)
        where = self._pending_rung(trial_id, budget)
        if vals is None or where is None:
            return CONTINUE
        b, k = where
        peers = self._recorded[b][k]
        decision: Decision = CONTINUE
        if peers and budget < self.max_budget:
            points = to_minimization(np.array([*peers.values(), vals]), self.directions)
            position = int(np.flatnonzero(priority_order(points) == len(points) - 1)[0])
            if position * self.reduction_factor > len(points):
                decision = STOP
        peers[trial_id] = vals
        if decision == STOP:
            self.stopped[trial_id] = Stop(bracket=b, rung=k, budget=self.rungs[b][k], values=vals)
        return decision

    def record(self, trial_id: str, budget: float, values: Sequence[float]) -> None:
        """Record a final result (a trial that completed) where :meth:`on_result` would, without
        deciding anything."""
        vals = self._values(values)
        where = self._pending_rung(trial_id, budget)
        if vals is not None and where is not None:
            self._recorded[where[0]][where[1]][trial_id] = vals

    def describe(self) -> str:
        """One line per bracket: each rung's budget, trials recorded and trials stopped there."""
        lines = []
        for b, rungs in enumerate(self.rungs):
            parts = []
            for k, t in enumerate(rungs):
                n = len(self._recorded[b][k])
                s = sum(1 for v in self.stopped.values() if v.bracket == b and v.rung == k)
                parts.append(f"{t:g}: {n} recorded, {s} stopped")
            lines.append(f"bracket {b}: " + " | ".join(parts))
        return "\n".join(lines)
