"""The Optuna samplers a sweep's ``search.sampler`` names, built by :func:`make_sampler`.

``gp`` (default; Gaussian-process Bayesian optimisation, :class:`StoppedAwareGPSampler`, see
bench/search_efficiency.py for why), ``tpe`` (multivariate TPE, with the random start-up phase
shortened to a third of the budget, at least 2 and at most 10 trials), ``nsga2`` (population
``search.nsga2_population``, default 8, instead of Optuna's 50, which is far too large for trials
that cost minutes), ``random`` and ``grid`` (every searched parameter a choice; the grid in random
order, ``num_samples`` points of it). Every one is seeded with the experiment's seed.

What each learns from a trial MO-ASHA stopped (told to Optuna as PRUNED, without values, since its
objectives are at a smaller budget): TPE counts it among the bad trials; GP counts it toward its
random start and fits it at the worst complete values (:class:`StoppedAwareGPSampler`); NSGA-II
and random search ignore it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from disentune.config import Experiment

_COMPLETE, _PRUNED, _RUNNING = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                                 optuna.trial.TrialState.RUNNING)


def _quiet_study(directions: list) -> optuna.Study:
    """An in-memory study, without Optuna's "A new study created in memory" line at every proposal."""
    log = logging.getLogger("optuna.storages._in_memory")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        return optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
    finally:
        log.setLevel(level)


class StoppedAwareGPSampler(optuna.samplers.GPSampler):
    """Optuna's GP sampler that learns from trials stopped early (``scheduler: mo_asha``).

    Optuna's ``GPSampler`` fits only COMPLETE trials and stays random until ``n_startup_trials``
    of them exist. Under MO-ASHA most trials end PRUNED (stopped at a rung), which left it two
    ways to fail (bench/early_stopping.py): a random start of 6 in an 18-trial sweep that stops 2
    trials in 3 hardly ever ended, so GP with MO-ASHA was random search; and once it fitted, it
    could not see the stopped trials and proposed the same stopped configuration again and
    again (8 times in 9 trials on one seed, each stopped at the first rung).

    So here a stopped trial counts toward the random start (as TPE counts it), and the GP is fitted
    on the complete trials plus every stopped one at the *worst* value of each objective among the
    complete trials: its objectives at the rung are at a smaller budget, not on the full budget's
    scale, but MO-ASHA has judged it dominated there, and pessimistic imputation (as for failed
    evaluations in Bayesian optimisation) says exactly that much. The fit waits for ``fit_after``
    complete trials. Where no trial is stopped this is Optuna's GP sampler unchanged.

    The imputed trials live in an in-memory copy of the study built for each proposal (public
    Optuna API: ``add_trial`` of created trials), so the real study keeps only what happened.
    Running trials are copied as pending points when their parameters are set, as Ray Tune's
    ``OptunaSearch`` sets them all at ``ask``; constraints (``Trial.set_constraint``, which the
    platform does not use) are not copied.
    """

    def __init__(self, *, seed: int | None, n_startup_trials: int, fit_after: int = 2) -> None:
        if fit_after < 1:
            raise ValueError(f"fit_after must be at least 1, got {fit_after}")
        if n_startup_trials < fit_after:
            raise ValueError(f"n_startup_trials must be at least fit_after = {fit_after}, got {n_startup_trials}")
        self._start_sampler = optuna.samplers.RandomSampler(seed=seed)  # what GPSampler builds itself
        super().__init__(seed=seed, n_startup_trials=fit_after, independent_sampler=self._start_sampler)
        self.startup_trials, self.fit_after = n_startup_trials, fit_after

    def _starting(self, study: optuna.Study) -> bool:
        return len(study.get_trials(deepcopy=False, states=(_COMPLETE, _PRUNED))) < self.startup_trials

    def fitted_study(self, study: optuna.Study, search_space: dict[str, optuna.distributions.BaseDistribution]
                     ) -> optuna.Study | None:
        """The trials the GP is fitted on, as an in-memory study: the complete ones, the stopped
        ones at the worst complete values, the running ones (pending points); None while fewer
        than ``fit_after`` trials are complete."""
        trials = [t for t in study.get_trials(deepcopy=False, states=(_COMPLETE, _PRUNED, _RUNNING))
                  if search_space.keys() <= t.params.keys()]
        complete = np.array([t.values for t in trials if t.state == _COMPLETE], dtype=float)
        if len(complete) < self.fit_after:
            return None
        worst = [float(complete[:, i].max() if d == optuna.study.StudyDirection.MINIMIZE else complete[:, i].min())
                 for i, d in enumerate(study.directions)]
        fitted = _quiet_study(study.directions)
        for t in trials:
            try:
                copy = optuna.trial.create_trial(
                    params={name: t.params[name] for name in search_space}, distributions=search_space,
                    state=_RUNNING if t.state == _RUNNING else _COMPLETE,
                    values=None if t.state == _RUNNING else t.values if t.state == _COMPLETE else worst)
            except ValueError:  # a value outside today's distribution (an enqueued one): not fitted
                continue
            fitted.add_trial(copy)
        return fitted

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        search_space: dict[str, optuna.distributions.BaseDistribution]) -> dict[str, Any]:
        if search_space == {} or self._starting(study):
            return {}
        if not study.get_trials(deepcopy=False, states=(_PRUNED,)):
            return super().sample_relative(study, trial, search_space)  # nothing to impute: Optuna's own
        fitted = self.fitted_study(study, search_space)
        if fitted is None:
            return {}
        fitted.add_trial(optuna.trial.create_trial(state=_RUNNING))  # the trial being proposed
        return super().sample_relative(fitted, fitted.get_trials(deepcopy=False)[-1], search_space)

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, param_name: str,
                           param_distribution: optuna.distributions.BaseDistribution) -> Any:
        if self._starting(study):  # the random start: no "sampled independently" warning
            return self._start_sampler.sample_independent(study, trial, param_name, param_distribution)
        return super().sample_independent(study, trial, param_name, param_distribution)


def make_sampler(exp: Experiment) -> optuna.samplers.BaseSampler:
    s = exp.search
    if s.sampler == "tpe":
        startup = max(2, min(10, s.num_samples // 3))
        return optuna.samplers.TPESampler(seed=exp.seed, multivariate=True, n_startup_trials=startup)
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.nsga2_population, seed=exp.seed)
    if s.sampler == "gp":
        # Gaussian-process Bayesian optimisation: one GP per objective (Matern 5/2, ARD, fitted
        # noise since FID and MIG vary between training runs), then log expected hypervolume
        # improvement; with trials still running (max_concurrent_trials > 1) qLogEHVI over them
        # (Kriging believer). Handles floats, log-floats, ints and categoricals. The random start
        # is a third of the budget, 2 to 8 trials: on bench/search_efficiency.py's trade-off,
        # 8 reaches 95 % of the true front's hypervolume in as few trials as Optuna's 10 (median
        # 15) with a tighter spread, and 4 to 6 miss it on some seeds. The sampler costs a
        # fraction of a second to a few seconds per trial (about half that with greenlet
        # installed), so for sweeps of many hundreds of cheap trials prefer tpe.
        startup = max(2, min(8, s.num_samples // 3))
        return StoppedAwareGPSampler(seed=exp.seed, n_startup_trials=startup)
    if s.sampler == "grid" and not exp.subspaces:  # every searched parameter is a choice (config)
        grid = {n: list(p.values) for n, p in exp.params().items() if not p.fixed}
        return optuna.samplers.GridSampler(grid, seed=exp.seed)
    return optuna.samplers.RandomSampler(seed=exp.seed)
