"""Build the Ray Train ``TorchTrainer`` that runs one trial's workers."""

from __future__ import annotations

import os
from typing import Any, Sequence

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from disentune.train.loop import TrialSpec, train_loop_per_worker

# read by Ray Train's controller, which the trainer starts with the driver's value of it
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"


def make_trainer(spec: TrialSpec, *, storage_path: str, name: str, use_gpu: bool,
                 storage_filesystem: Any = None, callbacks: Sequence = ()) -> TorchTrainer:
    """``train.workers`` workers, each with ``cpus_per_worker`` CPUs (and ``gpus_per_worker``
    GPUs when ``use_gpu``); checkpoints kept: the last two; ``train.max_failures`` restarts."""
    t = spec.experiment.train
    os.environ[START_TIMEOUT_ENV] = f"{t.placement_timeout_s:g}"  # this trial process's own copy
    resources = {"CPU": t.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = t.gpus_per_worker
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec},
        scaling_config=ScalingConfig(
            num_workers=t.workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            callbacks=list(callbacks),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            # a failed worker group restarts from the trial's last checkpoint; a group that cannot
            # be placed is retried as often, each attempt waiting placement_timeout_s (see
            # START_TIMEOUT_ENV), never forever (Ray's default controller_failure_limit is -1)
            failure_config=FailureConfig(max_failures=t.max_failures, controller_failure_limit=t.max_failures),
        ),
    )
