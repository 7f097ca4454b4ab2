"""Replicated trials: each configuration Optuna proposes trains with ``k`` seeds, and Optuna is
told the median of each objective over the replicates that succeeded.

A *trial* is one configuration (one Optuna trial, one row of ``trials.parquet``); its *replicates*
are Tune trials of their own (one in-trial process or Ray Train worker group each), so they run in
parallel where the cluster has room, are retried like any trial (``train.max_failures``) and
continue from their own checkpoints on ``--resume``. :class:`ReplicatedSearch` sits between Tune
and the Optuna searcher: Tune asks it for ``k`` times as many trials; it asks Optuna once per
configuration and hands out the same configuration ``k`` times with the replicate seeds of
:func:`replicate_seed`, tagged with the trial's number and the replicate's index; when the last
replicate of a trial ends it tells Optuna the medians (a trial whose replicates all failed is
failed: Optuna's FAIL, never a NaN value, which Ray's OptunaSearch cannot tell and would leave a
phantom RUNNING trial for GP and TPE).

Objectives that compare the replicates (``udr``) are computed when the last replicate ends, by
:data:`GROUP_OBJECTIVES` ``(checkpoint URIs) -> {name: one value per replicate}``, which the sweep
sets in the driver (a function is not saved with Tune's experiment, so a resumed sweep sets it
again); each replicate's checkpoint comes from :class:`CheckpointLedger`, a Tune callback.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from ray.tune import Callback
from ray.tune.search import Searcher

TRIAL_KEY, REPLICATE_KEY = "_trial", "_replicate"
GroupObjectives = Callable[[Sequence[str]], dict[str, list[float]]]

# trial id -> URI of its latest checkpoint; filled by CheckpointLedger in the driver process
CHECKPOINTS: dict[str, str] = {}
GROUP_OBJECTIVES: GroupObjectives | None = None


def replicate_seed(seed: int, replicate: int) -> int:
    """Replicate 0 keeps the trial's own seed (so ``replicates: 1`` is the unreplicated sweep);
    replicate ``r > 0`` draws its seed from ``SeedSequence([seed, r])``."""
    if replicate == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), replicate]).generate_state(1)[0] >> 1)


@dataclass
class Group:
    """One configuration and what its replicates have reported so far."""

    config: dict[str, Any]
    leader: str  # the id Optuna knows this trial by
    values: dict[int, dict[str, float]] = field(default_factory=dict)  # replicate -> objectives
    failed: set[int] = field(default_factory=set)
    pruned: set[int] = field(default_factory=set)  # stopped early by the scheduler
    checkpoints: dict[int, str] = field(default_factory=dict)
    told: bool = False


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and interquartile range (numpy's linear quantiles) of replicate values."""
    a = np.asarray(values, dtype=np.float64)
    q1, q3 = np.quantile(a, [0.25, 0.75])
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max()), "iqr": float(q3 - q1)}


class ReplicatedSearch(Searcher):
    """Wraps a multi-objective searcher (Ray's ``OptunaSearch``) for ``replicates`` seeds a trial."""

    def __init__(self, inner: Searcher, *, replicates: int, objectives: Sequence[str], modes: Sequence[str],
                 fixed_seed: int, full_images: int | None = None) -> None:
        super().__init__(metric=list(objectives), mode=list(modes))
        self.inner, self.replicates = inner, replicates
        self.objectives = list(objectives)
        self.fixed_seed = fixed_seed  # the trials' seed when the space does not search it
        self.full_images = full_images  # a trial's full budget: one that ended below it was stopped early
        self.groups: list[Group] = []
        self.pending: list[tuple[int, int]] = []  # (trial, replicate) still to hand out
        self.assigned: dict[str, tuple[int, int]] = {}  # Tune trial id -> (trial, replicate)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return False  # Tune's ConcurrencyLimiter counts replicates, which is what runs

    def suggest(self, trial_id: str) -> dict | None:
        if not self.pending:
            number = len(self.groups)
            leader = f"trial-{number}"
            config = self.inner.suggest(leader)
            if config is None or config == Searcher.FINISHED:
                return config
            self.groups.append(Group(dict(config), leader))
            self.pending = [(number, r) for r in range(self.replicates)]
        number, replicate = self.pending.pop(0)
        self.assigned[trial_id] = (number, replicate)
        config = dict(self.groups[number].config)
        config["seed"] = replicate_seed(config.get("seed", self.fixed_seed), replicate)
        config[TRIAL_KEY], config[REPLICATE_KEY] = number, replicate
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass  # multi-objective Optuna learns nothing from intermediate results

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.assigned:
            return
        number, replicate = self.assigned[trial_id]
        group = self.groups[number]
        values = {o: (result or {}).get(o) for o in self.objectives}
        per_model = [o for o in self.objectives if not self._across(o)]
        ok = not error and result is not None and not result.get("stopped") and all(
            isinstance(values[o], (int, float)) and math.isfinite(values[o]) for o in per_model)
        if ok and self.full_images and (result.get("images_seen") or 0) < self.full_images:
            group.pruned.add(replicate)  # stopped early by the scheduler
        elif ok:
            group.values[replicate] = {o: float(values[o]) for o in per_model}
            if trial_id in CHECKPOINTS:
                group.checkpoints[replicate] = CHECKPOINTS[trial_id]
        else:
            group.failed.add(replicate)
        if len(group.values) + len(group.failed) + len(group.pruned) == self.replicates and not group.told:
            self._tell(group)

    def _across(self, objective: str) -> bool:
        from disentune.metrics.objectives import objective_source

        return objective_source(objective).kind == "cross_model"

    def _tell(self, group: Group) -> None:
        group.told = True
        if group.pruned:
            # values at a lower budget are not the objective: Optuna's PRUNED (no values), which
            # TPE counts among the bad trials, GP fits at the worst complete values
            # (search/samplers.py) and NSGA-II leaves out
            self.inner.on_trial_complete(group.leader, result=None, error=False)
            return
        across = [o for o in self.objectives if self._across(o)]
        if across and len(group.values) >= 2 and GROUP_OBJECTIVES is not None:
            ordered = sorted(r for r in group.values if r in group.checkpoints)
            if len(ordered) >= 2:
                found = GROUP_OBJECTIVES([group.checkpoints[r] for r in ordered])
                for o in across:
                    for r, value in zip(ordered, found[o]):
                        group.values[r][o] = float(value)
        complete = {r: v for r, v in group.values.items() if all(o in v and math.isfinite(v[o]) for o in self.objectives)}
        if not complete:
            self.inner.on_trial_complete(group.leader, result=None, error=True)
            return
        medians = {o: statistics.median(v[o] for v in complete.values()) for o in self.objectives}
        self.inner.on_trial_complete(group.leader, result=medians, error=False)

    def get_state(self) -> dict:
        return dict(self.__dict__)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


class CheckpointLedger(Callback):
    """Remembers every trial's latest checkpoint URI (for objectives across replicates)."""

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        path = checkpoint.path
        if "://" not in path and type(checkpoint.filesystem).__name__ != "LocalFileSystem":
            path = f"s3://{path}"
        CHECKPOINTS[trial.trial_id] = path
