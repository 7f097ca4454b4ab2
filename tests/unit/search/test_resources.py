"""What one trial reserves and how many trials run at once, with and without (fractional) GPUs."""

import pytest

from disentune.config import experiment_from_dict
from disentune.search.tune import max_concurrent, trial_resources


def experiment(**train):
    return experiment_from_dict({"train": train, "space": {"lambda_tc": {"uniform": [0.0, 4.0]}}})


@pytest.mark.parametrize(("train", "cluster", "expected"), [
    ({"gpus_per_worker": 0.25}, {"CPU": 16, "GPU": 1}, 4),  # four small trials share one GPU
    ({"gpus_per_worker": 0.25}, {"CPU": 16, "GPU": 2}, 8),
    ({"gpus_per_worker": 0.25}, {"CPU": 2, "GPU": 1}, 2),  # the CPUs run out first
    ({"gpus_per_worker": 0.5, "workers": 2, "launcher": "ray_train"}, {"CPU": 16, "GPU": 2}, 2),
    ({"gpus_per_worker": 1.0}, {"CPU": 16, "GPU": 1}, 1),
])
def test_trials_pack_onto_gpus_by_their_fraction(train, cluster, expected):
    assert max_concurrent(experiment(**train), cluster, use_gpu=True) == expected


def test_without_gpus_the_cpus_bound_the_trials():
    assert max_concurrent(experiment(cpus_per_worker=1), {"CPU": 2}, use_gpu=False) == 2
    assert max_concurrent(experiment(cpus_per_worker=0.5), {"CPU": 2, "GPU": 1}, use_gpu=False) == 4
    assert max_concurrent(experiment(cpus_per_worker=4), {"CPU": 2}, use_gpu=False) == 1
    chosen = experiment_from_dict({"search": {"max_concurrent_trials": 3}, "space": {"lambda_tc": {"uniform": [0.0, 4.0]}}})
    assert max_concurrent(chosen, {"CPU": 64, "GPU": 8}, use_gpu=True) == 3


def test_an_in_trial_worker_reserves_its_share_of_a_gpu_only_when_gpus_are_used():
    exp = experiment(launcher="in_trial", cpus_per_worker=2, gpus_per_worker=0.25)
    assert trial_resources(exp, use_gpu=True) == {"cpu": 2, "gpu": 0.25}
    assert trial_resources(exp, use_gpu=False) == {"cpu": 2, "gpu": 0}
    # a Ray Train trial only waits for its worker group, which reserves the real resources
    assert trial_resources(experiment(launcher="ray_train"), use_gpu=True) == {"cpu": 0.001}
