"""Build the Ray Train ``TorchTrainer`` that runs one trial's workers.

Where the workers go (``train`` keys, checked by :class:`~disentune.config.TrainConfig`):

- ``placement_strategy``: the worker group's placement group strategy, ``PACK`` (default: as
  few nodes as fit), ``SPREAD`` (one worker per node where possible: a lost node takes fewer
  workers with it), ``STRICT_PACK`` (one node) or ``STRICT_SPREAD`` (distinct nodes, or wait);
- ``resources_per_worker``: custom resources each worker also reserves, e.g. ``{spot: 1}`` to put
  workers only on nodes started with ``--resources '{"spot": N}'`` (the trial process and its
  Ray Train controller stay where Tune placed them).

A worker group that loses a node (a preempted spot machine) fails as a whole; Ray Train restarts it
from the trial's last reported checkpoint, up to ``train.max_failures`` times, wherever the
cluster then has room; each restart waits at most ``train.placement_timeout_s`` to be placed.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from disentune.config import TrainConfig
from disentune.search.placement import worker_resources
from disentune.train.loop import TrialSpec, train_loop_per_worker

# read by Ray Train's controller, which the trainer starts with the driver's value of it
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"


def scaling_config(train: TrainConfig, use_gpu: bool) -> ScalingConfig:
    return ScalingConfig(num_workers=train.workers, use_gpu=use_gpu, placement_strategy=train.placement_strategy,
                         resources_per_worker=worker_resources(train, use_gpu))


def make_trainer(spec: TrialSpec, *, storage_path: str, name: str, use_gpu: bool,
                 storage_filesystem: Any = None, callbacks: Sequence = ()) -> TorchTrainer:
    """``train.workers`` workers placed as :func:`scaling_config` says; checkpoints kept: the last
    two; ``train.max_failures`` restarts of the worker group."""
    t = spec.experiment.train
    os.environ[START_TIMEOUT_ENV] = f"{t.placement_timeout_s:g}"  # this trial process's own copy
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec},
        scaling_config=scaling_config(t, use_gpu),
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
