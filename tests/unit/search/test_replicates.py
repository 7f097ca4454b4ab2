"""Replicated trials: one Optuna trial per configuration, k Tune trials with their seeds, and
Optuna told the medians (FAIL when every replicate failed, PRUNED when early stopping ended it)."""

from __future__ import annotations

import pickle
import statistics

import numpy as np
import pytest
from ray.tune.search import Searcher

from disentune.search.replicates import REPLICATE_KEY, TRIAL_KEY, ReplicatedSearch, replicate_seed, spread


class Recorder(Searcher):
    """A real ``Searcher`` standing in for OptunaSearch: proposes a fixed sequence, records what it is told."""

    def __init__(self) -> None:
        super().__init__(metric=["fid", "mig"], mode=["min", "max"])
        self.asked: list[str] = []
        self.told: dict[str, tuple[dict | None, bool]] = {}

    def suggest(self, trial_id: str) -> dict:
        self.asked.append(trial_id)
        return {"lambda_tc": float(len(self.asked))}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.told[trial_id] = (result, error)


def test_replicate_seeds_keep_the_trials_seed_first_and_differ_after():
    assert replicate_seed(7, 0) == 7
    seeds = [replicate_seed(7, r) for r in range(5)]
    assert len(set(seeds)) == 5 and all(0 <= s < 2**63 for s in seeds)
    assert replicate_seed(7, 3) == replicate_seed(7, 3) != replicate_seed(8, 3)


def test_each_configuration_is_asked_once_and_told_the_medians():
    inner = Recorder()
    search = ReplicatedSearch(inner, replicates=3, objectives=["fid", "mig"], modes=["min", "max"], fixed_seed=11)
    configs = [search.suggest(f"tune-{i}") for i in range(6)]
    assert inner.asked == ["trial-0", "trial-1"]  # two configurations for six Tune trials
    assert [c[TRIAL_KEY] for c in configs] == [0, 0, 0, 1, 1, 1]
    assert [c[REPLICATE_KEY] for c in configs] == [0, 1, 2, 0, 1, 2]
    assert [c["seed"] for c in configs[:3]] == [replicate_seed(11, r) for r in range(3)]
    assert configs[0]["lambda_tc"] == configs[2]["lambda_tc"] != configs[3]["lambda_tc"]
    values = [(30.0, 0.2), (10.0, 0.5), (20.0, 0.1)]
    for i, (fid, mig) in enumerate(values):
        assert "trial-0" not in inner.told  # nothing told before the last replicate ends
        search.on_trial_complete(f"tune-{i}", {"fid": fid, "mig": mig, "images_seen": 100})
    result, error = inner.told["trial-0"]
    assert not error and result == {"fid": 20.0, "mig": 0.2}
    # one replicate failing leaves the median of the others; all failing is Optuna's FAIL
    search.on_trial_complete("tune-3", {"fid": float("nan"), "mig": 0.3})
    search.on_trial_complete("tune-4", None, error=True)
    search.on_trial_complete("tune-5", {"fid": 5.0, "mig": 0.3, "stopped": "diverged: loss became nan"})
    assert inner.told["trial-1"] == (None, True)


def test_a_configuration_stopped_early_is_pruned_and_the_state_survives_a_pickle():
    inner = Recorder()
    search = ReplicatedSearch(inner, replicates=2, objectives=["fid", "mig"], modes=["min", "max"], fixed_seed=0,
                              full_images=900)
    for i in range(2):
        search.suggest(f"tune-{i}")
    search.on_trial_complete("tune-0", {"fid": 1.0, "mig": 0.9, "images_seen": 100})  # stopped at a rung
    restored = pickle.loads(pickle.dumps(search))  # as Tune saves the searcher
    restored.on_trial_complete("tune-1", {"fid": 2.0, "mig": 0.8, "images_seen": 100})
    assert restored.inner.told["trial-0"] == (None, False)  # PRUNED: no values, no error


def test_spread_is_median_min_max_and_interquartile_range():
    values = [1.0, 4.0, 2.0, 10.0]
    s = spread(values)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    assert s == {"median": statistics.median(values), "min": 1.0, "max": 10.0, "iqr": pytest.approx(q3 - q1)}
