"""The samplers a sweep builds (:func:`disentune.search.samplers.make_sampler`)."""

import math

import numpy as np
import optuna
import pytest

from disentune.config import SearchConfig, experiment_from_dict
from disentune.pareto import hypervolume
from disentune.search.samplers import StoppedAwareGPSampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.ERROR)

DEFAULT = SearchConfig().sampler
SEEDED = ("gp", "tpe", "nsga2", "random")


def experiment(sampler: str, seed: int = 0, num_samples: int = 12, **more):
    return experiment_from_dict({"seed": seed, "search": {"sampler": sampler, "num_samples": num_samples}, **more})


def tradeoff(x: float, y: float) -> tuple[float, float]:
    """bench/search_efficiency.py's surrogate of the FID (min) / MIG (max) trade-off, both minimised."""
    quality = 0.2 + 2.0 * y**1.5 + 0.6 * (x - 0.4) ** 2
    disentanglement = (1 - math.exp(-4.0 * y)) * (1 - 0.8 * (x - 0.7) ** 2)
    return quality, -disentanglement


def optimise(sampler: str, seed: int, trials: int, batch: int = 1) -> tuple[list, list]:
    """Proposals and values of ``trials`` trials, asked ``batch`` at a time as Tune's OptunaSearch asks."""
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler(experiment(sampler, seed, trials)))
    params, values = [], []
    while len(values) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(values)))]
        xs = [(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)) for t in asked]
        for t, x in zip(asked, xs):
            params.append(x)
            values.append(tradeoff(*x))
            study.tell(t, values[-1])
    return params, values


def test_every_sampler_name_builds_its_sampler():
    expected = {"gp": StoppedAwareGPSampler, "tpe": optuna.samplers.TPESampler,
                "nsga2": optuna.samplers.NSGAIISampler, "random": optuna.samplers.RandomSampler}
    for name, cls in expected.items():
        assert type(make_sampler(experiment(name))) is cls
    grid = experiment("grid", space={"lambda_mi": {"choice": [0.0, 1.0]}, "lambda_tc": {"choice": [0.0, 5.0, 9.0]}})
    assert type(make_sampler(grid)) is optuna.samplers.GridSampler


@pytest.mark.parametrize(("num_samples", "startup"), [(1, 2), (8, 2), (12, 4), (24, 8), (1000, 8)])
def test_gp_random_start_is_a_third_of_the_budget_between_2_and_8(num_samples, startup):
    sampler = make_sampler(experiment("gp", num_samples=num_samples))
    assert sampler.startup_trials == startup
    assert not sampler._deterministic  # FID and MIG vary between training runs: fit the noise


def ended(study: optuna.Study, states: str) -> None:
    """One trial per letter of ``states``, asked and told: ``c`` complete, ``p`` pruned (stopped by
    the scheduler), ``f`` failed."""
    for state in states:
        t = study.ask()
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        if state == "c":
            study.tell(t, tradeoff(x, y))
        else:
            study.tell(t, state=optuna.trial.TrialState.PRUNED if state == "p" else optuna.trial.TrialState.FAIL)


def fits(study: optuna.Study) -> bool:
    """Whether the study's sampler proposes the next trial from its model (not at random)."""
    sampler = study.sampler
    trial = study.ask()
    proposed = sampler.sample_relative(study, study.get_trials(deepcopy=False)[-1],
                                       {"x": optuna.distributions.FloatDistribution(0, 1),
                                        "y": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # not an ended trial for either count
    return bool(proposed)


@pytest.mark.parametrize(("states", "fitted"), [
    ("cccccc", True),      # no scheduler: Optuna's GP, fitted after the start of 6
    ("ccccc", False),
    ("ccpppp", True),      # stopped trials count toward the start; 2 complete ones to fit
    ("ccppp", False),      # 5 ended: still the random start
    ("cpppppppp", False),  # one complete trial is not enough to fit
    ("ccffff", False),     # failed trials explored nothing: they do not count
])
def test_gp_random_start_counts_stopped_trials_and_fits_the_complete_ones(states, fitted):
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler(experiment("gp", num_samples=18)))  # start of 6
    ended(study, states)
    assert fits(study) is fitted


def test_gp_does_not_propose_a_stopped_configuration_again():
    # Optuna's GP alone fits the 2 complete trials only and proposed (0.42, 1.0) 8 times in a row
    # here, every one of them stopped; bench/early_stopping.py's sweep did the same on a real run
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=StoppedAwareGPSampler(seed=0, n_startup_trials=2))
    for x, y in [(0.2, 0.3), (0.8, 0.6)]:
        study.enqueue_trial({"x": x, "y": y})
    ended(study, "cc")
    proposed = []
    for _ in range(8):
        t = study.ask()
        proposed.append((t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)))
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
    gaps = [math.dist(a, b) for i, a in enumerate(proposed) for b in proposed[i + 1:]]
    assert min(gaps) > 0.05, proposed


def test_gp_is_fitted_on_stopped_trials_at_the_worst_complete_values():
    sampler = StoppedAwareGPSampler(seed=0, n_startup_trials=2)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for x, values in [(0.1, (3.0, 0.2)), (0.5, (1.0, 0.1)), (0.9, None)]:
        state = optuna.trial.TrialState.COMPLETE if values else optuna.trial.TrialState.PRUNED
        study.add_trial(optuna.trial.create_trial(params={"x": x}, distributions=space, values=values, state=state))
    study.add_trial(optuna.trial.create_trial(params={"x": 0.7}, distributions=space,
                                              state=optuna.trial.TrialState.RUNNING))
    fitted = sampler.fitted_study(study, space)
    rows = [(t.params["x"], t.state.name, t.values) for t in fitted.trials]
    assert rows == [(0.1, "COMPLETE", [3.0, 0.2]), (0.5, "COMPLETE", [1.0, 0.1]),
                    (0.9, "COMPLETE", [3.0, 0.1]),  # worst FID-like (max) and MIG-like (min) values
                    (0.7, "RUNNING", None)]
    before = [(t.state, t.params, t.values, t.system_attrs) for t in study.trials]
    assert sampler.sample_relative(study, study.trials[-1], space)  # fitted on the copy
    assert [(t.state, t.params, t.values, t.system_attrs) for t in study.trials] == before  # the real study untouched
    lone = optuna.create_study(directions=["minimize", "maximize"])
    lone.add_trials([study.trials[0], study.trials[2]])  # one complete trial: too few to fit
    assert sampler.fitted_study(lone, space) is None


def test_gp_without_stopped_trials_is_optunas_own():
    def proposals(sampler) -> list:
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        ended(study, "cccccc")
        return [(t.params["x"], t.params["y"]) for t in study.trials]

    assert proposals(StoppedAwareGPSampler(seed=1, n_startup_trials=3)) == proposals(
        optuna.samplers.GPSampler(seed=1, n_startup_trials=3))


def test_gp_start_below_the_fit_is_refused():
    with pytest.raises(ValueError, match="n_startup_trials must be at least fit_after"):
        StoppedAwareGPSampler(seed=0, n_startup_trials=1)


def test_nsga2_population_comes_from_the_config():
    sampler = make_sampler(experiment("nsga2", search={"sampler": "nsga2", "nsga2_population": 6}))
    assert sampler._population_size == 6


@pytest.mark.parametrize("name", sorted({DEFAULT, "gp"}))
def test_seeded_sampler_repeats_its_proposals_model_based_ones_included(name):
    first, _ = optimise(name, seed=3, trials=8, batch=2)  # num_samples 8: random start of 2
    again, _ = optimise(name, seed=3, trials=8, batch=2)
    other, _ = optimise(name, seed=4, trials=3)
    assert first == again
    assert first[:3] != other


def test_the_other_samplers_are_seeded():
    for name in SEEDED:
        a, _ = optimise(name, seed=5, trials=3)
        b, _ = optimise(name, seed=5, trials=3)
        assert a == b, name


@pytest.mark.parametrize("name", sorted({DEFAULT, "gp"}))
def test_beats_random_search_on_the_tradeoff_at_twelve_trials(name):
    grid = np.linspace(0, 1, 101)
    everything = np.array([tradeoff(a, b) for a in grid for b in grid])
    ref = everything.max(axis=0) + 0.1 * np.ptp(everything, axis=0)
    best = hypervolume(everything, ref)

    def median_hv(sampler: str) -> float:
        return float(np.median([hypervolume(np.array(optimise(sampler, s, 12)[1]), ref) / best
                                for s in range(3)]))

    assert median_hv(name) > median_hv("random") + 0.02
