"""MO-ASHA as a Ray Tune ``TrialScheduler``: a thin adapter over :mod:`disentune.search.successive_halving`.

Ray Tune's own schedulers take one metric (they refuse lists) and Optuna's pruners refuse
multi-objective studies, so multi-objective early stopping lives here: multi-objective
asynchronous successive halving (Schmucker, Donini, Zafar, Salinas & Archambeau 2021,
"Multi-objective Asynchronous Successive Halving"; ASHA: Li et al. 2020, "A System for Massively
Parallel Hyperparameter Tuning"). The rules (rungs, non-dominated sorting, the epsilon-net inside
a front, the promotion rule, brackets) are written out in that module's docstring.

What a trial must report (``tune.report``): ``images_seen`` (``time_attr``; cumulative, rising)
and every objective (by default ``fid`` and ``mig``) in every result. A result is judged at a rung
when its objectives are all finite numbers; a result with a non-finite objective (the training
loop reports NaN at epochs it does not evaluate) continues and is not recorded, so the rung is
decided at the trial's next evaluated result at or past it: evaluate at the first epoch that
crosses each rung budget (:attr:`MOASHA.rung_budgets`). A result without ``images_seen``
continues; one with ``images_seen`` but without an objective key is a ``ValueError`` naming it.
Replicated trials (k seeds of one configuration, each its own Tune trial; see
``search.replicates``): with ``group_key`` (the config key holding a trial's number), MO-ASHA
decides per configuration, not per seed. The first replicate to reach a rung records the
configuration there and is promoted or stopped; its siblings follow that decision when they reach
the rung (stopped there too, or continuing). One replicate's value at a rung stands for its
configuration: waiting for every seed would hold the fastest replicate back.

Decisions: ``CONTINUE`` or ``STOP`` (never ``PAUSE``). A stopped trial is recorded in
:attr:`MOASHA.stopped` as ``trial_id -> (rung budget, {objective: value at that rung})``. Errors
(:meth:`~MOASHA.on_trial_error`, also called before Tune retries a trial) remove the trial's
records from every rung; it keeps its bracket and is judged afresh when it reports again.

Saving and restoring: Ray Tune 2.60 pickles the scheduler once, into ``tuner.pkl`` when the
``Tuner`` is built, and never saves it with the experiment checkpoints (only the searcher and the
callbacks are), so ``Tuner.restore`` gets a scheduler with empty rungs. Put
:meth:`MOASHA.checkpoint_callback` in ``RunConfig(callbacks=...)``: Tune saves its state with every
experiment checkpoint and, on restore, hands it back to the very scheduler unpickled from
``tuner.pkl`` (both are in that one pickle, so they stay the same object) before any trial is
re-added. The scheduler itself pickles (plain Python and numpy state).
"""

from __future__ import annotations

import math
import numbers
import pickle
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from disentune.search.successive_halving import STOP, SuccessiveHalving

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController


class StoppedTrial(NamedTuple):
    """Where MO-ASHA stopped a trial: the rung's budget (images) and the objectives there."""

    images: float
    values: dict[str, float]


def _number(value: Any) -> float:
    """A reported objective as a float (NaN when it is not a real number, e.g. None)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _names(value: str | Sequence[str] | None) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class MOASHA(TrialScheduler):
    """Multi-objective asynchronous successive halving for Ray Tune (keyword-only).

    ``objectives`` / ``directions``: the reported metrics ranked and ``"min"`` / ``"max"`` for
    each (2 or 3; default FID min, MIG max). ``min_images``: the first rung; ``max_images``: a
    trial's full budget (``epochs * images per epoch``; no rung at or above it);
    ``reduction_factor`` eta (default 3): rungs at ``min_images * eta**k``, about the best 1/eta
    of each rung continue; ``brackets``: asynchronous Hyperband brackets (bracket b starts at
    ``min_images * eta**b``; default 1); ``seed``: the bracket draws; ``time_attr``: the budget key.
    """

    _supports_buffered_results = False  # act on a rung's decision at once

    def __init__(self, *, objectives: Sequence[str] = ("fid", "mig"),
                 directions: Sequence[str] = ("min", "max"), min_images: int, max_images: int,
                 reduction_factor: float = 3, brackets: int = 1, seed: int = 0,
                 time_attr: str = "images_seen", group_key: str | None = None) -> None:
        super().__init__()
        self.group_key = group_key
        objectives, directions = tuple(objectives), tuple(directions)
        if len(objectives) != len(directions):
            raise ValueError(f"one direction per objective: {list(objectives)} has "
                             f"{len(directions)} directions {list(directions)}")
        if len(set(objectives)) != len(objectives) or not 2 <= len(objectives) <= 3:
            raise ValueError(f"objectives must be 2 or 3 distinct metric names, got {list(objectives)}")
        self.objectives, self.directions, self.time_attr = objectives, directions, time_attr
        self._core = SuccessiveHalving(
            directions=directions, min_budget=min_images, max_budget=max_images,
            reduction_factor=reduction_factor, brackets=brackets, seed=seed,
        )
        self._live: set[str] = set()

    # --- what the sweep reads -------------------------------------------------------------------
    @property
    def rung_budgets(self) -> tuple[tuple[float, ...], ...]:
        """Each bracket's rung budgets in images (bracket 0 first)."""
        return self._core.rungs

    @property
    def stopped(self) -> dict[str, StoppedTrial]:
        """``trial_id -> (rung budget, {objective: value})`` for every trial MO-ASHA stopped."""
        return {t: StoppedTrial(s.budget, dict(zip(self.objectives, s.values)))
                for t, s in self._core.stopped.items()}

    @property
    def core(self) -> SuccessiveHalving:
        """The Ray-free decision core (its rungs' records, brackets and stops)."""
        return self._core

    # --- TrialScheduler -------------------------------------------------------------------------
    def set_search_properties(self, metric: str | list[str] | None, mode: str | list[str] | None,
                              **spec: Any) -> bool:
        """Accept ``TuneConfig(metric=..., mode=...)`` only when unset or equal to our objectives.

        ``self._metric`` stays None: Tune's strict metric check would test a list for membership
        in the result dict."""
        if metric is None and mode is None:
            return True
        return _names(metric) == self.objectives and (mode is None or _names(mode) == self.directions)

    def key(self, trial: Trial) -> str:
        """What MO-ASHA ranks: the trial, or with ``group_key`` its configuration."""
        config = trial.config or {}
        if self.group_key is not None and self.group_key in config:
            return f"trial-{config[self.group_key]}"
        return trial.trial_id

    def on_trial_add(self, tune_controller: "TuneController", trial: Trial) -> None:
        self._core.add(self.key(trial))  # a restored, retried or sibling trial keeps its bracket
        self._live.add(trial.trial_id)

    def _values(self, result: dict) -> tuple[float, ...]:
        missing = [o for o in self.objectives if o not in result]
        if missing:
            raise ValueError(f"MO-ASHA: the result at {self.time_attr} = {result[self.time_attr]} "
                             f"lacks the objective(s) {missing}; each result must report {list(self.objectives)}")
        return tuple(_number(result[o]) for o in self.objectives)

    def on_trial_result(self, tune_controller: "TuneController", trial: Trial, result: dict) -> str:
        if self.time_attr not in result:
            return TrialScheduler.CONTINUE
        key, images = self.key(trial), _number(result[self.time_attr])
        if key != trial.trial_id and key in self._core.stopped and images >= self._core.stopped[key].budget:
            return TrialScheduler.STOP  # a sibling replicate's configuration was stopped at this rung
        decision = self._core.on_result(key, images, self._values(result))
        return TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: "TuneController", trial: Trial, result: dict) -> None:
        if result and self.time_attr in result:
            self._core.record(self.key(trial), _number(result[self.time_attr]), self._values(result))
        self._live.discard(trial.trial_id)

    def on_trial_error(self, tune_controller: "TuneController", trial: Trial) -> None:
        if self.key(trial) == trial.trial_id:  # a configuration's records outlive one replicate's error
            self._core.remove(trial.trial_id)
        self._live.discard(trial.trial_id)

    def on_trial_remove(self, tune_controller: "TuneController", trial: Trial) -> None:
        self._live.discard(trial.trial_id)  # a paused / pending trial's records stay valid

    def choose_trial_to_run(self, tune_controller: "TuneController") -> Trial | None:
        """First in, first out: the first PENDING trial, else the first PAUSED one."""
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in tune_controller.get_trials():
                if trial.status == status:
                    return trial
        return None

    def debug_string(self) -> str:
        names = ", ".join(f"{o} ({d})" for o, d in zip(self.objectives, self.directions))
        return (f"Using MO-ASHA on {names} by {self.time_attr}: eta={self._core.reduction_factor:g}, "
                f"{len(self._core.stopped)} stopped\n{self._core.describe()}")

    # --- state ----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"core": self._core, "live": set(self._live)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._core, self._live = state["core"], set(state["live"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def checkpoint_callback(self) -> "MOASHACheckpoint":
        """The callback that keeps this scheduler's state in Tune's experiment checkpoints."""
        return MOASHACheckpoint(self)


class MOASHACheckpoint(Callback):
    """Saves an :class:`MOASHA`'s state with each Tune experiment checkpoint and gives it back on
    ``Tuner.restore`` (see the module docstring for why the scheduler needs it)."""

    def __init__(self, scheduler: MOASHA) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any]:
        return {"mo_asha": pickle.dumps(self.scheduler.get_state())}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.set_state(pickle.loads(state["mo_asha"]))
