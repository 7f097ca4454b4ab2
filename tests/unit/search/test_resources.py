"""What one trial reserves, whether it fits the cluster, and how many trials run at once."""

import pytest

from disentune.config import experiment_from_dict
from disentune.errors import UserError
from disentune.search.placement import check_fits, fits, max_concurrent, trial_demand
from disentune.search.tune import trial_resources


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
    # a Ray Train trial only waits for its worker group, which reserves the real resources: the
    # trial itself holds no CPU (0.001 CPU left a 2 x 1-CPU trial unplaceable on 2 CPUs)
    assert trial_resources(experiment(launcher="ray_train"), use_gpu=True) == {"cpu": 0, "memory": 1}


@pytest.mark.parametrize(("train", "nodes", "use_gpu", "ok"), [
    ({"workers": 2, "cpus_per_worker": 1}, [{"CPU": 2}], False, True),  # every CPU of the machine
    ({"workers": 2, "cpus_per_worker": 1.5}, [{"CPU": 2}], False, False),
    ({"workers": 2, "cpus_per_worker": 1}, [{"CPU": 1}, {"CPU": 1}], False, True),  # one per node
    ({"workers": 1, "cpus_per_worker": 2}, [{"CPU": 1}, {"CPU": 1}], False, False),  # a worker is on one node
    ({"workers": 4, "cpus_per_worker": 1, "gpus_per_worker": 0.5}, [{"CPU": 8, "GPU": 2}], True, True),
    ({"workers": 4, "cpus_per_worker": 1, "gpus_per_worker": 1}, [{"CPU": 8, "GPU": 2}], True, False),
    ({"workers": 1, "cpus_per_worker": 1}, [{"CPU": 8}], True, False),  # GPUs asked for, none there
])
def test_a_trial_fits_when_the_nodes_together_hold_its_workers(train, nodes, use_gpu, ok):
    exp = experiment(launcher="ray_train", **train)
    assert fits(trial_demand(exp, use_gpu), nodes) is ok


def test_a_trial_that_never_fits_is_refused_in_one_line_or_waited_for_where_the_cluster_grows():
    exp = experiment(launcher="ray_train", workers=2, cpus_per_worker=2)
    assert check_fits(experiment(workers=1), [{"CPU": 2}], False, can_grow=False) is None
    with pytest.raises(UserError) as refused:
        check_fits(exp, [{"CPU": 2, "GPU": 0}], False, can_grow=False)
    assert str(refused.value) == (
        "train: a trial needs 2 workers x (2 CPU); the cluster has 2 CPU and 0 GPU on 1 node (largest 2 CPU); "
        "lower train.workers or train.cpus_per_worker / gpus_per_worker")
    warning = check_fits(exp, [{"CPU": 2}], False, can_grow=True)
    assert warning.endswith("waiting up to train.placement_timeout_s = 600 s for the autoscaler to add nodes")


def test_a_custom_resource_no_node_has_is_refused_before_ray_starts():
    """resources_per_worker: {spot: 1} on a machine with no 'spot': refused at once, naming it."""
    exp = experiment(workers=2, resources_per_worker={"spot": 1})
    assert trial_demand(exp, False).per_worker == {"CPU": 1.0, "spot": 1.0}
    with pytest.raises(UserError) as err:
        check_fits(exp, [{"CPU": 2}], False, can_grow=False)
    assert str(err.value) == ("train: a trial needs 2 workers x (1 CPU, 1 spot); the cluster has 2 CPU and 0 GPU, "
                              "0 spot on 1 node (largest 2 CPU); lower train.workers or "
                              "train.cpus_per_worker / gpus_per_worker / resources_per_worker")
    assert check_fits(exp, [{"CPU": 1, "spot": 1}, {"CPU": 1, "spot": 1}], False, can_grow=False) is None
