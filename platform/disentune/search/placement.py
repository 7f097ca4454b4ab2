"""Whether a trial fits the cluster, and how many fit at once: plain arithmetic on resources.

A trial needs ``train.workers`` workers, each with ``cpus_per_worker`` CPUs (and, when GPUs are
used, ``gpus_per_worker`` GPUs) on one node; the Tune trial process around a Ray Train worker
group reserves nothing the workers need (see ``search.tune.trial_resources``). A node holds
``floor(min(node CPUs / cpus_per_worker, node GPUs / gpus_per_worker))`` workers, and a trial fits
when the nodes together hold all of its workers (Ray Train packs bundles over nodes).

A local run knows its resources before Ray starts, so a trial that can never fit is refused then
(:func:`check_fits`). A cluster can grow through the autoscaler, so there the same check only
warns, and the wait for placement is bounded by ``train.placement_timeout_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from disentune.config import Experiment, TrainConfig
from disentune.errors import UserError

Resources = Mapping[str, float]


@dataclass(frozen=True)
class TrialDemand:
    """What one trial asks of the cluster: ``workers`` bundles of ``per_worker`` resources."""

    workers: int
    per_worker: dict[str, float]

    def describe(self) -> str:
        each = ", ".join(f"{v:g} {k}" for k, v in self.per_worker.items())
        return f"{self.workers} worker{'s' if self.workers > 1 else ''} x ({each})"

    def workers_on(self, node: Resources) -> int:
        """How many of this trial's workers one node holds."""
        return int(min(math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in self.per_worker.items()))


def local_node(num_cpus: int | None = None) -> dict[str, float]:
    """The resources of the private Ray instance a local sweep starts (``ray.init("local")``)."""
    import os

    import torch

    return {"CPU": float(num_cpus or os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def uses_gpu(setting: bool | str, nodes: Sequence[Resources]) -> bool:
    """``train.use_gpu`` resolved: ``"auto"`` means whenever the cluster has a GPU."""
    if setting == "auto":
        return sum(n.get("GPU", 0.0) for n in nodes) > 0
    return bool(setting)


def worker_resources(train: TrainConfig, use_gpu: bool) -> dict[str, float]:
    """One worker's bundle: ``cpus_per_worker`` CPUs, ``gpus_per_worker`` GPUs when ``use_gpu``,
    and the custom ``resources_per_worker`` (the config has checked their names and amounts)."""
    resources = {"CPU": float(train.cpus_per_worker)}
    if use_gpu:
        resources["GPU"] = float(train.gpus_per_worker)
    resources.update({str(name): float(amount) for name, amount in train.resources_per_worker.items()})
    return resources


def trial_demand(exp: Experiment, use_gpu: bool) -> TrialDemand:
    """The bundles Ray Train asks for (train/launch.py builds its ScalingConfig from the same)."""
    return TrialDemand(exp.train.workers, worker_resources(exp.train, use_gpu))


def fits(demand: TrialDemand, nodes: Sequence[Resources]) -> bool:
    """Whether the nodes together hold all of one trial's workers."""
    return sum(demand.workers_on(node) for node in nodes) >= demand.workers


def describe_nodes(nodes: Sequence[Resources], custom: Sequence[str] = ()) -> str:
    """The cluster's CPUs and GPUs, and its amounts of the ``custom`` resources a trial asks for."""
    total = {k: sum(n.get(k, 0.0) for n in nodes) for k in ("CPU", "GPU", *custom)}
    largest = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    where = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"
    extra = "".join(f", {total[k]:g} {k}" for k in custom)
    return f"{total['CPU']:g} CPU and {total['GPU']:g} GPU{extra} on {where} (largest {largest:g} CPU)"


def check_fits(exp: Experiment, nodes: Sequence[Resources], use_gpu: bool, *, can_grow: bool) -> str | None:
    """Refuse (``UserError``) a trial that does not fit ``nodes``; where the cluster ``can_grow``,
    return a warning line instead (the wait is then bounded by ``train.placement_timeout_s``)."""
    demand = trial_demand(exp, use_gpu)
    if fits(demand, nodes):
        return None
    custom = [k for k in demand.per_worker if k not in ("CPU", "GPU")]
    line = f"train: a trial needs {demand.describe()}; the cluster has {describe_nodes(nodes, custom)}"
    if not can_grow:
        fix = "train.cpus_per_worker / gpus_per_worker" + (" / resources_per_worker" if custom else "")
        raise UserError(f"{line}; lower train.workers or {fix}")
    return (f"{line}; waiting up to train.placement_timeout_s = {exp.train.placement_timeout_s:g} s "
            "for the autoscaler to add nodes")


def max_concurrent(exp: Experiment, cluster: Resources, use_gpu: bool) -> int:
    """``search.max_concurrent_trials``, or as many trials as the cluster's CPUs and, with GPUs,
    its GPUs hold at once: ``gpus_per_worker: 0.25`` packs four one-worker trials per GPU."""
    if exp.search.max_concurrent_trials is not None:
        return exp.search.max_concurrent_trials
    t = exp.train
    fits_at_once = cluster.get("CPU", 1) // (t.cpus_per_worker * t.workers)
    if use_gpu:
        fits_at_once = min(fits_at_once, cluster.get("GPU", 0) // (t.gpus_per_worker * t.workers))
    return max(1, int(fits_at_once))
