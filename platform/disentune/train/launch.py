"""Build the Ray Train ``TorchTrainer`` that runs one trial's workers."""

from __future__ import annotations

from typing import Any, Sequence

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from disentune.train.loop import TrialSpec, train_loop_per_worker


def make_trainer(spec: TrialSpec, *, storage_path: str, name: str, use_gpu: bool,
                 storage_filesystem: Any = None, callbacks: Sequence = ()) -> TorchTrainer:
    """``train.workers`` workers, each with ``cpus_per_worker`` CPUs (and ``gpus_per_worker``
    GPUs when ``use_gpu``); checkpoints kept: the last two; ``train.max_failures`` restarts."""
    t = spec.experiment.train
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
            # a failed worker group restarts from the trial's last checkpoint
            failure_config=FailureConfig(max_failures=t.max_failures),
        ),
    )
