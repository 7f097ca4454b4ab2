"""Trials that need every CPU run; trials the cluster has no room for fail within a bounded wait
with the reason, instead of hanging. Real local Ray, 2 CPUs."""

from __future__ import annotations

import time

import pytest

from disentune.config import experiment_from_dict
from disentune.errors import UserError
from disentune.pipeline import run_sweep

pytestmark = pytest.mark.integration


def space(name: str, **train) -> dict:
    return {
        "name": name, "seed": 3, "data": {"resolution": 32, "train_size": 256},
        "train": {"epochs": 1, **train},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"},
        "search": {"num_samples": 1, "sampler": "random"},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    }


@pytest.fixture()
def one_cpu_taken(ray_local):
    """An actor holding one of the two CPUs, as another job on a busy cluster would."""
    import ray

    @ray.remote(num_cpus=1)
    class Hold:
        def ping(self) -> int:
            return 1

    hold = Hold.remote()
    ray.get(hold.ping.remote())
    yield
    ray.kill(hold)


def test_a_trial_whose_two_workers_need_every_cpu_trains(ray_local, tmp_path, dsprites32):
    result = run_sweep(experiment_from_dict(space("every_cpu", workers=2, cpus_per_worker=1)), out=tmp_path / "run")
    [outcome] = result.outcomes
    assert outcome.status == "ok", outcome.error
    assert outcome.metrics["images_seen"] == 256


def test_a_worker_group_with_no_room_fails_with_the_reason_within_its_timeout(one_cpu_taken, tmp_path, dsprites32):
    exp = experiment_from_dict(space("no_room", workers=2, cpus_per_worker=1, placement_timeout_s=5, max_failures=0))
    began = time.monotonic()
    result = run_sweep(exp, out=tmp_path / "run")
    [outcome] = result.outcomes
    assert outcome.status == "failed"
    assert "the worker group was not placed: it needs 2 workers x (1 CPU)" in outcome.error, outcome.error
    assert "waited 1 x train.placement_timeout_s = 5 s" in outcome.error
    assert time.monotonic() - began < 120


def test_in_trial_trials_with_no_room_end_the_sweep_with_one_line(one_cpu_taken, tmp_path, dsprites32):
    exp = experiment_from_dict(space("no_room_in_trial", launcher="in_trial", cpus_per_worker=2,
                                     placement_timeout_s=5))
    began = time.monotonic()
    with pytest.raises(UserError) as stuck:
        run_sweep(exp, out=tmp_path / "run")
    assert str(stuck.value).startswith("train: no trial could be placed within train.placement_timeout_s = 5 s: "
                                       "each needs 1 worker x (2 CPU); the cluster has 2 CPU")
    assert "\n" not in str(stuck.value) and time.monotonic() - began < 90
    assert not (tmp_path / "run" / "trials.parquet").exists()
