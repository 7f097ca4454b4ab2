"""Ray tasks of the evaluators (:func:`disentune.parallel.run_tasks`) on a real local Ray."""

from __future__ import annotations

import pytest

from disentune.parallel import run_tasks

pytestmark = pytest.mark.integration


def _record_threads(path: str) -> None:
    import os

    import torch

    with open(path, "w") as f:
        f.write(f"{os.getpid()} {torch.get_num_threads()}")


def test_each_task_runs_with_the_threads_of_its_own_cpus(ray_local, tmp_path):
    """Ray hands the same worker process to tasks of different sizes; each one still gets as many
    torch threads as it reserved CPUs."""
    runs = []
    for cpus in (2, 1, 2):
        jobs = [str(tmp_path / f"{len(runs)}-{i}") for i in range(2)]
        done, failed = run_tasks(_record_threads, jobs, num_cpus=cpus, use_gpu=False)
        assert not failed and sorted(done) == sorted(jobs)
        runs.append([open(j).read().split() for j in jobs])
    for cpus, jobs in zip((2, 1, 2), runs):
        assert [int(threads) for _, threads in jobs] == [cpus, cpus]


def test_one_failed_job_is_reported_and_the_others_finish(ray_local, tmp_path):
    jobs = [str(tmp_path / "a"), str(tmp_path / "missing" / "b"), str(tmp_path / "c")]
    done, failed = run_tasks(_record_threads, jobs, num_cpus=1, use_gpu=False)
    assert sorted(done) == [jobs[0], jobs[2]]
    assert [j for j, _ in failed] == [jobs[1]] and "No such file or directory" in failed[0][1]
