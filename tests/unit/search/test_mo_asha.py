"""MO-ASHA (Schmucker et al. 2021): the pure core (search/successive_halving.py) on hand-worked
scripted learning curves, and the Ray Tune scheduler (search/mo_asha.py) driven through Tune's
callbacks with real ``Trial`` objects, through pickling, and through one tiny real ``tune.Tuner``
run that is interrupted and restored."""

from __future__ import annotations

import math
import os
import pickle
import signal

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from disentune.search.mo_asha import MOASHA, StoppedTrial
from disentune.search.successive_halving import (
    CONTINUE, STOP, Stop, SuccessiveHalving, epsilon_net_order, priority_order,
)

C, S = CONTINUE, STOP

# The hand-worked example: 9 trials, eta = 3, rungs at 1, 3 and 9 budget units (full budget 27),
# objectives FID (min) and MIG (max). Each event: trial, budget, fid, mig, expected decision.
# With n points at a rung (peers + the arriving trial) and r its 0-based position in the order
# (fronts first, then the epsilon-net inside a front), the trial continues iff r * 3 <= n.
# Distances are Euclidean on (fid, -mig), so FID differences dominate them.
HAND = [
    # rung 1
    ("T0", 1, 50, 0.30, C),  # first at the rung
    ("T1", 1, 60, 0.20, S),  # dominated by T0: r = 1 of n = 2
    ("T2", 1, 40, 0.10, C),  # front {T0, T2}; the epsilon-net starts at the lowest FID, T2: r = 0
    ("T3", 1, 45, 0.25, S),  # front {T0, T2, T3}, a tie inside the front: net order T2 (seed),
    #                          T0 (10.0 from T2), T3 (5.0 from T2): r = 2 of 4, 6 > 4
    ("T4", 1, 70, 0.50, C),  # front {T0, T2, T3, T4}: net order T2, T4 (30.0 away), T0, T3: r = 1 of 5
    ("T0", 2, 48, 0.31, C),  # between rungs: continues, not recorded
    ("T5", 1, 56, 0.35, C),  # front of 5 (T1 dominated): T2, T4, then T5 (14.0 from T4, more than
    #                          T0's 10.0 and T3's 5.0): r = 2 of 6, 6 <= 6
    ("T6", 1, 80, 0.05, S),  # worst in both: last of 7
    ("T7", 1, 42, 0.28, S),  # non-dominated (it even dominates T3), yet crowded: net order T2, T4,
    #                          T5, T0 (6.0 from T5), T7 (2.0 from T2): r = 4 of 8, 12 > 8
    ("T8", 1, 38, 0.40, C),  # front {T4, T8}, lowest FID: r = 0 of 9
    # rung 3: the survivors T0, T2, T4, T5, T8
    ("T0", 3, 45, 0.35, C),  # first at the rung
    ("T2", 3, 35, 0.15, C),  # front {T0, T2}, lowest FID: r = 0 of 2
    ("T4", 3, 65, 0.30, S),  # dominated by T0: r = 2 of 3
    ("T5", 3, 50, 0.45, C),  # front {T0, T2, T5}: net order T2, T5 (15.0 away), T0: r = 1 of 4
    ("T8", 3, 30, 0.50, C),  # dominates every peer: r = 0 of 5
    # rung 9: the survivors T0, T2, T5, T8
    ("T8", 9, 25, 0.55, C),  # first at the rung
    ("T2", 9, 28, 0.20, S),  # dominated by T8: r = 1 of 2
    ("T5", 9, 40, 0.60, C),  # front {T8, T5}, order T8, T5, then T2: r = 1 of 3, 3 <= 3
    ("T0", 9, 38, 0.40, S),  # second front {T2, T0}, T2 first (lower FID): r = 3 of 4
    # the survivors finish their budget; results at or past the full budget never stop a trial
    ("T5", 27, 36, 0.62, C),
    ("T8", 27, 22, 0.58, C),
]
HAND_STOPPED = {"T1": (1, (60.0, 0.20)), "T3": (1, (45.0, 0.25)), "T6": (1, (80.0, 0.05)),
                "T7": (1, (42.0, 0.28)), "T4": (3, (65.0, 0.30)), "T2": (9, (28.0, 0.20)),
                "T0": (9, (38.0, 0.40))}


def hand_core(**kw) -> SuccessiveHalving:
    return SuccessiveHalving(directions=("min", "max"), min_budget=1, max_budget=27, reduction_factor=3, **kw)


def hand_scheduler(**kw) -> MOASHA:
    return MOASHA(objectives=("fid", "mig"), directions=("min", "max"), min_images=1, max_images=27,
                  reduction_factor=3, **kw)


def result(budget: float, fid: float, mig: float) -> dict:
    return {"images_seen": budget, "fid": fid, "mig": mig, "training_iteration": 1}


# --- the ranking ---------------------------------------------------------------------------------
def test_epsilon_net_starts_at_the_lowest_first_objective_and_takes_the_farthest_point_next():
    front = np.array([[50, -0.30], [40, -0.10], [45, -0.25], [70, -0.50]])
    # seed: index 1 (FID 40); farthest from it: index 3 (30.0); then index 0 (10.0 from index 1,
    # 20.0 from index 3) before index 2 (5.0 from index 1)
    assert epsilon_net_order(front).tolist() == [1, 3, 0, 2]
    # ties go to the lowest index: equal first objectives, then equal distances (sqrt 5)
    assert epsilon_net_order(np.array([[0.0, 0.0], [1.0, 2.0], [1.0, -2.0]])).tolist() == [0, 1, 2]
    assert epsilon_net_order(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [0, 1]


def test_priority_order_puts_whole_fronts_first():
    # minimisation points: front {0, 3}, then {1}, then {2}
    points = np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [4.0, 1.0]])
    assert priority_order(points).tolist() == [0, 3, 1, 2]


def test_a_trial_dominating_every_peer_continues_and_a_dominated_one_stops():
    # Syne Tune's code reads its sorted indices as priorities, so with this chain of 3 peers it
    # stops the new trial in both cases (ranks[-1] = index 2 / 4 > 1/3); the rule stops only the last
    for new, expected in (((0.1, 0.1), C), ((0.9, 0.9), S)):
        core = SuccessiveHalving(directions=("min", "min"), min_budget=1, max_budget=9)
        for i, v in enumerate([(0.2, 0.2), (0.4, 0.4), (0.6, 0.6)]):
            core.on_result(f"p{i}", 1, v)
        assert core.on_result("new", 1, new) == expected


# --- the hand-worked example -----------------------------------------------------------------------
def test_hand_worked_example_on_the_core():
    core = hand_core()
    assert core.rungs == ((1, 3, 9),)
    decisions = [core.on_result(t, b, (f, m)) for t, b, f, m, _ in HAND]
    assert decisions == [e for *_, e in HAND]
    assert {t: (s.budget, s.values) for t, s in core.stopped.items()} == HAND_STOPPED
    assert all(s.bracket == 0 for s in core.stopped.values())
    assert list(core.recorded(0, 0)) == ["T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"]
    assert core.recorded(0, 0)["T0"] == (50.0, 0.30)  # the budget-2 result was not recorded
    assert list(core.recorded(0, 1)) == ["T0", "T2", "T4", "T5", "T8"]
    assert list(core.recorded(0, 2)) == ["T8", "T2", "T5", "T0"]  # the budget-27 results add nothing


def trials(names) -> dict[str, Trial]:
    return {n: Trial("scripted", config={"name": n}, trial_id=n, stub=True) for n in names}


def test_hand_worked_example_through_the_tune_callbacks():
    sched = hand_scheduler()
    core = hand_core()
    tr = trials(f"T{i}" for i in range(9))
    for t in tr.values():
        sched.on_trial_add(None, t)
    decisions = []
    for name, budget, fid, mig, _ in HAND:
        decision = sched.on_trial_result(None, tr[name], result(budget, fid, mig))
        assert decision == core.on_result(name, budget, (fid, mig))
        decisions.append(decision)
        if decision == TrialScheduler.STOP:  # Tune then completes it with its last result
            sched.on_trial_complete(None, tr[name], result(budget, fid, mig))
    assert decisions == [e for *_, e in HAND]
    for name, (budget, fid, mig) in {"T5": (27, 36, 0.62), "T8": (27, 22, 0.58)}.items():
        sched.on_trial_complete(None, tr[name], result(budget, fid, mig))
    assert sched.stopped == {t: StoppedTrial(b, {"fid": v[0], "mig": v[1]}) for t, (b, v) in HAND_STOPPED.items()}
    assert sched.stopped["T7"] == (1, {"fid": 42.0, "mig": 0.28})  # unpacks as (images, values)
    text = sched.debug_string()
    assert "fid (min), mig (max)" in text and "7 stopped" in text
    assert "bracket 0: 1: 9 recorded, 4 stopped | 3: 5 recorded, 1 stopped | 9: 4 recorded, 2 stopped" in text


def test_results_at_or_past_the_full_budget_are_recorded_but_never_stop():
    core = hand_core()
    core.on_result("a", 9, (10.0, 0.9))
    assert core.on_result("b", 27, (99.0, 0.0)) == C  # jumped past rung 9 to the end: finished
    assert list(core.recorded(0, 2)) == ["a", "b"] and core.stopped == {}


def test_a_result_jumping_past_rungs_is_judged_at_the_highest_and_lower_rungs_stay_unfilled():
    core = hand_core()
    core.on_result("a", 3, (10.0, 0.9))
    assert core.on_result("b", 4, (20.0, 0.5)) == S  # judged at rung 3 (dominated by a)
    assert core.recorded(0, 0) == {}
    assert core.on_result("b", 5, (1.0, 1.0)) == C  # already judged at rung 3: rung 1 stays empty
    assert core.recorded(0, 0) == {}


def test_unevaluated_results_wait_for_the_next_evaluated_one():
    sched = hand_scheduler()
    a, b = trials(["a", "b"]).values()
    for t in (a, b):
        sched.on_trial_add(None, t)
    assert sched.on_trial_result(None, a, result(1, 10.0, 0.9)) == TrialScheduler.CONTINUE
    # the loop reports NaN at epochs it does not evaluate; None is not a number either
    assert sched.on_trial_result(None, b, result(1, math.nan, 0.1)) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, b, {**result(2, 20.0, 0.1), "mig": None}) == TrialScheduler.CONTINUE
    assert list(sched.core.recorded(0, 0)) == ["a"]
    # the next evaluated result past rung 1 is judged there
    assert sched.on_trial_result(None, b, result(2, 20.0, 0.5)) == TrialScheduler.STOP
    assert sched.stopped == {"b": (1, {"fid": 20.0, "mig": 0.5})}
    # a result without the budget key just continues; one without an objective is refused
    assert sched.on_trial_result(None, a, {"fid": 1.0, "mig": 1.0}) == TrialScheduler.CONTINUE
    with pytest.raises(ValueError, match=r"lacks the objective\(s\) \['mig'\]"):
        sched.on_trial_result(None, a, {"images_seen": 3, "fid": 1.0})


# --- three objectives ------------------------------------------------------------------------------
def test_three_objectives_by_hand():
    # FID (min), MIG (max), DCI (max); rungs 1 and 3 (full budget 9); minimisation (f, -m, -d)
    core = SuccessiveHalving(directions=("min", "max", "max"), min_budget=1, max_budget=9)
    assert core.rungs == ((1, 3),)
    events = [
        ("A", (50, 0.30, 0.50), C),  # first
        ("B", (60, 0.20, 0.40), S),  # dominated by A: r = 1 of 2
        ("C", (40, 0.20, 0.60), C),  # dominates B, non-dominated with A; lowest FID: r = 0 of 3
        ("D", (45, 0.25, 0.55), S),  # front {A, C, D}: net order C, A (10.0), D (5.0): r = 2 of 4
        ("E", (90, 0.90, 0.10), C),  # front {A, C, D, E}: net order C, E (50.0), A, D: r = 1 of 5
        ("F", (95, 0.10, 0.95), C),  # worse FID and MIG than C but the best DCI: on the front;
        #                              net order C, F (55.0 from C), A (10.0 from C), E (5.13 from
        #                              F), D (5.0 from C): r = 1 of 6, and E is now crowded by F
    ]
    for name, values, expected in events:
        assert core.on_result(name, 1, values) == expected, name
    order = priority_order(np.array([[f, -m, -d] for f, m, d in core.recorded(0, 0).values()]))
    assert [list(core.recorded(0, 0))[i] for i in order] == ["C", "F", "A", "E", "D", "B"]
    # on FID and MIG alone F is dominated (by C, among others) and comes last: r = 5 of 6
    two = SuccessiveHalving(directions=("min", "max"), min_budget=1, max_budget=9)
    assert [two.on_result(n, 1, v[:2]) for n, v, _ in events] == [C, S, C, S, C, S]


# --- brackets ----------------------------------------------------------------------------------------
def test_brackets_start_later_and_keep_their_own_rungs():
    core = hand_core(brackets=2)
    assert core.rungs == ((1, 3, 9), (3, 9))
    core.add("b0", bracket=0)
    for name in ("x", "y"):
        core.add(name, bracket=1)
    core.on_result("b0", 3, (1.0, 1.0))  # the best point, but in bracket 0
    assert core.on_result("x", 1, (99.0, 0.0)) == C  # bracket 1 has no rung at 1
    assert core.recorded(1, 0) == {}
    assert core.on_result("x", 3, (50.0, 0.5)) == C  # first at bracket 1's rung 3 (b0 is not a peer)
    assert core.on_result("y", 3, (60.0, 0.4)) == S  # dominated by x
    assert core.stopped["y"] == Stop(bracket=1, rung=0, budget=3, values=(60.0, 0.4))
    assert list(core.recorded(0, 1)) == ["b0"] and list(core.recorded(1, 0)) == ["x", "y"]


@pytest.mark.parametrize(("brackets", "expected"), [(2, [0.731, 0.269]), (3, [0.665, 0.245, 0.090])])
def test_trials_join_brackets_by_a_softmax_of_their_rung_counts(brackets, expected):
    # Syne Tune / Ray Tune: P(b) ~ exp(number of rungs of b); bracket b has one rung fewer than b - 1
    core = SuccessiveHalving(directions=("min", "max"), min_budget=1, max_budget=81, brackets=brackets, seed=1)
    drawn = np.bincount([core.add(f"t{i}") for i in range(6000)], minlength=brackets) / 6000
    assert np.allclose(drawn, expected, atol=0.02)
    assert core.add("t0") == core.bracket_of("t0")  # added twice: keeps its bracket
    again = SuccessiveHalving(directions=("min", "max"), min_budget=1, max_budget=81, brackets=brackets, seed=1)
    assert [again.add(f"t{i}") for i in range(50)] == [core.bracket_of(f"t{i}") for i in range(50)]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"brackets": 4}, r"brackets must be an integer from 1 to 3"),
    ({"brackets": 0}, r"brackets must be an integer from 1 to 3"),
    ({"max_budget": 1}, r"max_budget must be above min_budget = 1"),
    ({"reduction_factor": 1}, r"reduction_factor must be above 1"),
    ({"min_budget": 0}, r"min_budget must be a positive number"),
    ({"directions": ("min",)}, r"directions must be 2 or more"),
    ({"directions": ("min", "up")}, r"directions must be 2 or more"),
])
def test_bad_settings_are_refused_with_the_allowed_values(kwargs, message):
    settings = {"directions": ("min", "max"), "min_budget": 1, "max_budget": 27, **kwargs}
    with pytest.raises(ValueError, match=message):
        SuccessiveHalving(**settings)


def test_scheduler_settings_and_search_properties():
    with pytest.raises(ValueError, match="one direction per objective"):
        MOASHA(objectives=("fid", "mig", "dci"), min_images=1, max_images=9)
    with pytest.raises(ValueError, match="2 or 3 distinct"):
        MOASHA(objectives=("fid",), directions=("min",), min_images=1, max_images=9)
    sched = MOASHA(min_images=20_000, max_images=540_000, brackets=2)
    assert sched.rung_budgets == ((20_000, 60_000, 180_000), (60_000, 180_000))
    assert sched.set_search_properties(None, None)
    assert sched.set_search_properties(["fid", "mig"], ["min", "max"])
    assert not sched.set_search_properties("fid", "min")
    assert sched.metric is None  # Tune's strict metric check must not test a list against a result


def test_choose_trial_to_run_is_first_in_first_out():
    class Controller:
        def __init__(self, trials):
            self.trials = trials

        def get_trials(self):
            return self.trials

    a, b, c = trials(["a", "b", "c"]).values()
    a.set_status(Trial.RUNNING)
    b.set_status(Trial.PAUSED)
    c.set_status(Trial.PENDING)
    sched = hand_scheduler()
    assert sched.choose_trial_to_run(Controller([a, b, c])) is c
    assert sched.choose_trial_to_run(Controller([a, b])) is b
    assert sched.choose_trial_to_run(Controller([a])) is None


# --- errors --------------------------------------------------------------------------------------------
def test_an_errored_trial_is_removed_from_its_rungs():
    sched = hand_scheduler()
    a, b, c = trials(["a", "b", "c"]).values()
    for t in (a, b, c):
        sched.on_trial_add(None, t)
    assert sched.on_trial_result(None, a, result(1, 10.0, 0.9)) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, a, result(3, 9.0, 0.9)) == TrialScheduler.CONTINUE
    sched.on_trial_error(None, a)
    assert sched.core.recorded(0, 0) == {} and sched.core.recorded(0, 1) == {}
    # dominated by a, it would stop; a is nobody's peer any more
    assert sched.on_trial_result(None, b, result(1, 20.0, 0.5)) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, c, result(1, 30.0, 0.4)) == TrialScheduler.STOP
    # Tune retries a trial with on_trial_error then on_trial_add: it keeps its bracket and is
    # judged afresh at the rung its next result reaches
    sched.on_trial_add(None, a)
    assert sched.on_trial_result(None, a, result(3, 40.0, 0.1)) == TrialScheduler.CONTINUE
    assert list(sched.core.recorded(0, 1)) == ["a"] and sched.core.recorded(0, 0).keys() == {"b", "c"}


# --- saving and restoring --------------------------------------------------------------------------------
def drive(sched: MOASHA, events, tr) -> list[str]:
    out = []
    for name, budget, fid, mig, _ in events:
        out.append(sched.on_trial_result(None, tr[name], result(budget, fid, mig)))
    return out


def test_pickle_round_trip_mid_sweep():
    tr = trials(f"T{i}" for i in range(9))
    sched = hand_scheduler(brackets=2, seed=3)
    for t in tr.values():
        sched.on_trial_add(None, t)
    first, rest = HAND[:11], HAND[11:]
    drive(sched, first, tr)
    copy = pickle.loads(pickle.dumps(sched))
    assert copy.stopped == sched.stopped
    assert drive(copy, rest, tr) == drive(sched, rest, tr)
    assert copy.stopped == sched.stopped and len(sched.stopped) >= 1
    assert [copy.core.bracket_of(n) for n in tr] == [sched.core.bracket_of(n) for n in tr]
    # 1 bracket: the round trip reproduces the hand-worked decisions
    one = hand_scheduler()
    drive(one, first, tr)
    assert drive(pickle.loads(pickle.dumps(one)), rest, tr) == [e for *_, e in rest]


def test_the_checkpoint_callback_restores_a_fresh_scheduler():
    # Tune 2.60 pickles the scheduler only into tuner.pkl at the start; its state travels with the
    # experiment checkpoint through the callback's get_state / set_state
    tr = trials(f"T{i}" for i in range(9))
    sched = hand_scheduler()
    first, rest = HAND[:11], HAND[11:]
    drive(sched, first, tr)
    state = pickle.loads(pickle.dumps(sched.checkpoint_callback().get_state()))
    built = hand_scheduler()
    fresh, callback = pickle.loads(pickle.dumps((built, built.checkpoint_callback())))  # as tuner.pkl
    assert callback.scheduler is fresh
    callback.set_state(state)
    for t in tr.values():  # Tune re-adds every restored trial after restoring the callbacks
        fresh.on_trial_add(None, t)
    assert drive(fresh, rest, tr) == [e for *_, e in rest]
    assert {t: (s.images, tuple(s.values.values())) for t, s in fresh.stopped.items()} == HAND_STOPPED


# --- a real Tune run -------------------------------------------------------------------------------------
# Scripted curves (fid, mig) at the budgets each trial reports: the hand-worked values at 1, 3, 9
CURVES: dict[str, dict[int, tuple[float, float]]] = {}
for _name, _budget, _fid, _mig, _ in HAND:
    CURVES.setdefault(_name, {})[_budget] = (_fid, _mig)
for _name, _curve in CURVES.items():  # a trial that never reached a rung gets a made-up, worse value
    last = _curve[max(_curve)]
    for _budget in (1, 3, 9, 27):
        _curve.setdefault(_budget, (last[0] + 1.0, last[1] - 0.01))
        last = _curve[_budget]


def scripted(config: dict) -> None:
    from ray import tune

    for budget in (1, 3, 9, 27):
        fid, mig = CURVES[config["name"]][budget]
        tune.report({"images_seen": budget, "fid": fid, "mig": mig})


class InterruptAfter:
    """A Tune callback that sends the driver SIGUSR1 (Tune's graceful stop: it saves the
    experiment and returns) once ``n`` results have arrived."""

    def __new__(cls, n: int):
        from ray import tune

        class _Interrupt(tune.Callback):
            def __init__(self, n: int) -> None:
                self.n, self.seen = n, 0

            def on_trial_result(self, iteration, trials, trial, result, **info):
                self.seen += 1
                if self.seen == self.n:
                    os.kill(os.getpid(), signal.SIGUSR1)

            def __getstate__(self):  # pickled into tuner.pkl: the restored run is not interrupted
                return {"n": -1, "seen": 0}

        return _Interrupt(n)


def sequential(core: SuccessiveHalving, names) -> SuccessiveHalving:
    """The core's decisions when the trials run one after another, each to its end or its stop."""
    for name in names:
        for budget in (1, 3, 9, 27):
            if core.on_result(name, budget, CURVES[name][budget]) == STOP:
                break
    return core


@pytest.mark.integration
def test_a_real_tuner_run_interrupted_and_restored_matches_the_core(tmp_path):
    import ray
    from ray import tune

    names = [f"T{i}" for i in range(9)]
    expected = sequential(hand_core(), names)
    assert set(expected.stopped) == {"T1", "T3", "T4", "T6", "T7"}
    # a scheduler that forgot the first 4 trials would decide the rest differently
    assert set(sequential(hand_core(), names[4:]).stopped) != set(expected.stopped) - set(names[:4])

    sched = hand_scheduler()
    ray.init("local", num_cpus=2, include_dashboard=False)
    try:
        tuner = tune.Tuner(
            scripted, param_space={"name": tune.grid_search(names)},
            tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=1, reuse_actors=True),
            run_config=tune.RunConfig(name="moasha", storage_path=str(tmp_path), verbose=0,
                                      callbacks=[sched.checkpoint_callback(), InterruptAfter(11)]),
        )
        first = tuner.fit()
        assert first.num_terminated < len(names)  # interrupted
        before = {first_result.config["name"] for first_result in first
                  if first_result.metrics.get("trial_id") in sched.stopped}
        assert before and before < set(expected.stopped)
        restored = tune.Tuner.restore(str(tmp_path / "moasha"), scripted, resume_unfinished=True)
        results = restored.fit()
        final = restored._local_tuner._tune_config.scheduler  # the one unpickled from tuner.pkl
    finally:
        ray.shutdown()
    assert final is not sched and not any(r.error for r in results)
    name_of = {r.metrics["trial_id"]: r.config["name"] for r in results}
    assert sorted(name_of.values()) == names
    # the restored scheduler kept the stops made before the interruption and decided the rest
    # as one uninterrupted run would
    assert {name_of[t]: (s.images, tuple(s.values.values())) for t, s in final.stopped.items()} == {
        n: (s.budget, s.values) for n, s in expected.stopped.items()}
    for r in results:  # each trial's last report is at its stop budget, or at the full budget
        stop = expected.stopped.get(r.config["name"])
        assert r.metrics["images_seen"] == (stop.budget if stop else 27), r.config["name"]
