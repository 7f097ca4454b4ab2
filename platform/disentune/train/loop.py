"""The per-worker training loop (what Ray Train runs on every worker of a trial).

Data parallelism: every epoch draws one global permutation from the trial seed; each global batch
of ``batch_size`` images is split evenly over the ranks, so W workers see exactly the images one
worker would, and DDP averages their gradients. A small training set stays on the worker's device
as uint8; a large one is decoded batch by batch from the dataset's shared cache (train/batches.py).
After every epoch rank 0 writes a checkpoint and every rank reports; at the last epoch (and every ``eval_every`` epochs) rank 0 also computes the search objectives.

Three conditions stop a trial early, each with a last report whose ``stopped`` says why (the
trial then counts as failed with that reason and is not retried, since each would recur): a
non-finite loss (divergence), ``train.time_limit_s`` passed (the trial's training and evaluation
time, resumed runs included) and running out of memory in a training step. One worker stops at
once; with several, each rank keeps stepping to the end of the epoch so collectives stay in step,
and the ranks agree there (out of memory with several workers raises instead: the worker group
fails and Ray Train reports it).

Every report carries the trial's whole per-epoch history (``history``: JSON of losses, images
seen, objectives when evaluated), which the checkpoint carries too: the curves table is built from
the trial's last report, so an epoch whose report Tune never logged (its process killed between
reporting and Tune recording it) or logged twice (re-run after a restore) appears exactly once.

The crash drill (``train.drill: worker_exit``, for testing fault handling) makes the last
rank's process exit halfway through the epoch after ``drill_epoch``, once per trial (a marker
file in the cache remembers it), so the restarted run resumes from the latest registered
checkpoint and completes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disentune.config import Experiment
from disentune.data.cache import cache_dir
from disentune.checkpoints import load_state, save_checkpoint
from disentune.data.ground_truth import training_indices
from disentune.data.open import open_dataset
from disentune.metrics.factor_net import load_extractor
from disentune.metrics.objectives import compute_objectives
from disentune.models.base import Hyper
from disentune.registry import MODELS
from disentune.train.batches import TrainingImages
from disentune.train.session import RayTrainSession, Session


# what one epoch's entry of the history keeps besides the ``loss_*`` terms
CURVE_KEYS = ("epoch", "images_seen", "train_seconds")  # and every objective


@dataclass(frozen=True, kw_only=True)
class TrialSpec:
    """Everything one trial's workers need: the experiment, this trial's parameters, paths."""

    experiment: Experiment
    params: dict[str, Any]  # variant, lambda_mi, lambda_tc, lr, latent_dim, batch_size, seed
    extractor_path: str | None  # the dataset-factor network (None for data without factors)
    rungs: tuple[int, ...] = ()  # early stopping: budgets (images seen) at which to evaluate
    started_at: float = field(default_factory=time.time)  # when the trial (not the loop) began


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**63


def _first_drill(spec: TrialSpec) -> bool:
    """True the first time a trial (by experiment and parameters) reaches its crash drill."""
    key = hashlib.sha256(repr((spec.experiment.name, sorted(spec.params.items()))).encode()).hexdigest()[:16]
    marker = cache_dir() / "drills" / key
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for and supported (any CPU; GPUs with bf16), else a no-op."""
    if amp and (device.type != "cuda" or torch.cuda.is_bf16_supported()):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _out_of_memory(err: RuntimeError) -> bool:
    """A failed allocation: ``torch.OutOfMemoryError`` (CUDA) or the CPU allocator's refusal."""
    return isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in str(err)


def _allocation(err: RuntimeError) -> str:
    """The failed allocation's size from torch's message, in MiB, or the message's first line."""
    found = re.search(r"[Tt]ried to allocate ([\d.]+) ?(bytes|[KMGT]iB)", str(err))
    if found is None:
        return str(err).splitlines()[0][:200]
    size = float(found.group(1)) / 2**20 if found.group(2) == "bytes" else float(found.group(1))
    unit = "MiB" if found.group(2) == "bytes" else found.group(2)
    return f"could not allocate {size:.1f} {unit}"


def run_training(spec: TrialSpec, session: Session) -> None:
    """Train one trial to its last epoch, resuming from the session's checkpoint if it has one."""
    loop_started = time.time()
    exp, p = spec.experiment, spec.params
    rank, world, device = session.rank, session.world_size, session.device
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(exp.train.cpus_per_worker)))

    data = open_dataset(exp.data)
    index = training_indices(data, exp.data.exclude, exp.data.train_size, np.random.default_rng(p["seed"]))
    images = TrainingImages(data, index, device)
    batch, per_rank = p["batch_size"], p["batch_size"] // world
    batches = len(index) // batch
    if batches == 0:
        raise ValueError(f"{len(index)} training images are fewer than one batch of {batch}")

    hyper = Hyper(
        latent_dim=p["latent_dim"], lambda_mi=p["lambda_mi"], lambda_tc=p["lambda_tc"],
        lr=p["lr"], dataset_size=len(index), scale_tied_codes=p.get("scale_tied_codes", False),
        c_max=p.get("c_max", 25.0), anneal_steps=p.get("anneal_steps", 100_000),
    )
    variant = MODELS.get(p["variant"])
    torch.manual_seed(p["seed"])  # identical initial weights on every rank
    model = variant.build(data.image_shape, hyper)
    trained = session.prepare(model)
    if exp.train.compile:
        trained = torch.compile(trained)
    step = variant.make_step(trained, hyper)
    precision = _autocast(device, exp.train.amp)
    noise = torch.Generator(device=device)  # reparameterisation noise, re-seeded every epoch

    start_epoch, images_seen, train_seconds, eval_seconds = 0, 0, 0.0, 0.0
    history: list[dict[str, float]] = []
    with session.resume_dir() as resume:
        if resume is not None:
            state = load_state(resume, device)
            model.load_state_dict(state["model"])
            step.load_state_dict(state["step"])
            start_epoch, images_seen = state["epoch"], state["images_seen"]
            train_seconds, eval_seconds = state["train_seconds"], state["eval_seconds"]
            history = list(state.get("history", []))

    factor_net = quality = None
    if rank == 0:  # the objectives' feature networks (only rank 0 evaluates)
        factor_net = load_extractor(spec.extractor_path, device) if spec.extractor_path else None
        quality = factor_net
        if exp.evaluation.inception_weights:
            from disentune.metrics.inception import load_inception

            quality = load_inception(exp.evaluation.inception_weights, device, kind=exp.evaluation.inception_kind)
    objectives = [o.name for o in exp.search.objectives]
    unset = dict.fromkeys(objectives, math.nan)
    meta = {
        "variant": p["variant"], "image_shape": list(data.image_shape),
        "hyper": dataclasses.asdict(hyper), "params": dict(p), "dataset": exp.data.dataset,
    }
    epochs, every, limit = exp.train.epochs, exp.evaluation.eval_every, exp.train.time_limit_s
    drill_exit = exp.train.drill == "worker_exit" and rank == world - 1
    for epoch in range(start_epoch, epochs):
        began = time.perf_counter()
        model.train()
        shuffle = torch.Generator().manual_seed(_epoch_seed(p["seed"], epoch))
        order = torch.randperm(len(index), generator=shuffle)
        noise.manual_seed(_epoch_seed(p["seed"] + 1 + rank, epoch))
        sums: dict[str, float] = defaultdict(float)
        stopped = None
        stepped = 0  # batches this epoch trained on (a trial stopped mid-epoch saw fewer images)
        for b in range(batches):
            if stopped and world == 1:
                break
            lo = b * batch + rank * per_rank
            where = f"epoch {epoch + 1}, batch {b + 1}"
            try:
                with precision:
                    terms = step(images.batch(order[lo : lo + per_rank]), noise)
            except RuntimeError as err:  # torch.OutOfMemoryError is one
                if world > 1 or not _out_of_memory(err):
                    raise
                stopped = f"out of memory at {where}: {_allocation(err)}"
                continue
            stepped += 1
            if stopped:
                continue  # keep in step with the other ranks' collectives until the epoch ends
            if not math.isfinite(terms["total"]):
                stopped = f"diverged: loss became {terms['total']} at {where}"
                continue
            for name, value in terms.items():
                sums[name] += value
            if limit and train_seconds + eval_seconds + time.perf_counter() - began > limit:
                stopped = f"time limit: train.time_limit_s = {limit:g} s passed at {where}"
            if drill_exit and epoch == exp.train.drill_epoch and b == batches // 2 and _first_drill(spec):
                os._exit(1)  # the crash drill: this worker process dies once, mid-epoch
        train_seconds += time.perf_counter() - began
        images_seen += stepped * batch
        if session.mean_over_workers({"stopped": float(stopped is not None)})["stopped"] > 0:
            session.report({
                "epoch": epoch + 1, "images_seen": images_seen, **unset,
                "stopped": stopped or "stopped by another worker of the trial",
                "train_seconds": train_seconds, "eval_seconds": eval_seconds,
                "startup_seconds": loop_started - spec.started_at, "history": json.dumps(history),
            }, None)
            return

        means = session.mean_over_workers({k: v / batches for k, v in sums.items()})
        metrics: dict[str, Any] = {f"loss_{k}": v for k, v in means.items()}
        metrics.update(
            epoch=epoch + 1, images_seen=images_seen, **unset,
            startup_seconds=loop_started - spec.started_at,
        )
        last = epoch + 1 == epochs
        at_rung = any(images_seen - batches * batch < r <= images_seen for r in spec.rungs)
        if rank == 0 and (last or at_rung or (every and (epoch + 1) % every == 0)):
            began = time.perf_counter()
            metrics.update(
                compute_objectives(model, data, exp, seed=p["seed"], device=device, quality=quality,
                                   factor_net=factor_net, regions=exp.data.exclude)
            )
            eval_seconds += time.perf_counter() - began
        metrics.update(train_seconds=train_seconds, eval_seconds=eval_seconds)
        history.append({k: v for k, v in metrics.items()
                        if (k.startswith("loss_") or k in CURVE_KEYS or k in unset) and isinstance(v, (int, float))})
        metrics["history"] = json.dumps(history)

        with tempfile.TemporaryDirectory() as tmp:
            checkpoint_dir = None
            if rank == 0:
                checkpoint_dir = Path(tmp)
                save_checkpoint(checkpoint_dir, {
                    "model": model.state_dict(), "step": step.state_dict(),
                    "epoch": epoch + 1,
                    "images_seen": images_seen, "train_seconds": train_seconds,
                    "eval_seconds": eval_seconds, "history": history, "meta": meta,
                })
            session.report(metrics, checkpoint_dir)


def train_loop_per_worker(config: dict) -> None:
    """Entry point for ``TorchTrainer(train_loop_per_worker=...)``: ``config = {"spec": TrialSpec}``."""
    run_training(config["spec"], RayTrainSession())
