"""Ray Tune + Optuna adapter: runs a sweep's trials, with the Optuna sampler that
:mod:`disentune.search.samplers` builds.

Optuna proposes each trial's parameters for two objectives, ``fid`` (minimised) and ``mig``
(maximised); Tune schedules trials. Each trial is a function trainable that either

- launches a nested Ray Train ``TorchTrainer`` (Train V2) whose rank-0 reports reach Tune through
  ``TuneReportCallback``; the trial function then reserves almost no CPU, so the CPUs go to the
  training workers; or
- (``train.in_trial``: one worker) runs the very same training loop in its own process through
  :class:`TuneTrialSession`, reserving the worker's CPUs and GPUs itself. This skips starting a
  controller and a worker group per trial, which on 2 cores costs more than a short trial trains.

Samplers (``search.sampler``) are built in :mod:`disentune.search.samplers`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.train.v2.api.exceptions import ControllerError
from ray.tune import Callback, Stopper
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.search.optuna import OptunaSearch

from disentune.config import Experiment, ParamSpec
from disentune.errors import Interrupted, UserError
from disentune.parallel import failure_reason
from disentune.metrics.objectives import cross_model_objectives, finite, objective_source
from disentune.search.outcome import TrialOutcome, one_per_replicate
from disentune.search import replicates
from disentune.search.replicates import REPLICATE_KEY, TRIAL_KEY, CheckpointLedger, ReplicatedSearch
from disentune.search.mo_asha import MOASHA
from disentune.search.samplers import make_sampler
from disentune.search.placement import describe_nodes, max_concurrent, trial_demand
from disentune.search.study import fail_orphans, trial_params
from disentune.search.tracking import tracker_callbacks
from disentune.storage import arrow_filesystem, join
from disentune.train.launch import make_trainer
from disentune.train.loop import TrialSpec, run_training
from disentune.train.session import checkpoint_dir



def trials_wanted(exp: Experiment) -> int:
    """``search.num_samples``, or the grid's size when the grid sampler has fewer points."""
    if exp.search.sampler == "grid":
        return min(exp.search.num_samples, len(exp.grid()))
    return exp.search.num_samples


def union_grid(exp: Experiment) -> list[dict] | None:
    """The points a grid over subspaces asks Optuna to run (its sampler is then random search,
    never consulted), in a seeded random order like the grid sampler's; None without subspaces."""
    if not exp.subspaces:
        return None
    import random

    points = exp.grid()
    random.Random(exp.seed).shuffle(points)
    return points[: exp.search.num_samples]


def _domain(spec: ParamSpec) -> Any:
    if spec.kind == "uniform":
        return tune.uniform(*spec.values)
    if spec.kind == "loguniform":
        return tune.loguniform(*spec.values)
    if spec.kind == "int":
        return tune.randint(spec.values[0], spec.values[1] + 1)  # upper bound exclusive
    return tune.choice(list(spec.values))


class TuneTrialSession:
    """The training loop's :class:`~disentune.train.session.Session` inside a Tune trial."""

    def __init__(self, use_gpu: bool) -> None:
        import torch

        self.rank, self.world_size = 0, 1
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")

    def prepare(self, model):
        return model.to(self.device)

    def resume_dir(self) -> contextlib.AbstractContextManager[Path | None]:
        return checkpoint_dir(tune.get_checkpoint())

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(metrics, checkpoint=checkpoint)

    def mean_over_workers(self, values: dict[str, float]) -> dict[str, float]:
        return values


class WorkerPlacementError(RuntimeError):
    """A trial's worker group found no room on the cluster within ``train.placement_timeout_s``."""


def _trial(config: dict, *, experiment: Experiment, fixed: dict, extractor_path: str | None,
           storage: tuple[str, Any], use_gpu: bool, rungs: tuple[int, ...] = ()) -> None:
    started = time.time()
    params = {k: v for k, v in {**fixed, **config}.items() if k not in (TRIAL_KEY, REPLICATE_KEY)}
    spec = TrialSpec(
        experiment=experiment, params=params, extractor_path=extractor_path, started_at=started, rungs=rungs,
    )
    if experiment.train.in_trial:
        run_training(spec, TuneTrialSession(use_gpu))
        return
    trial_id = tune.get_context().get_trial_id()
    trainer = make_trainer(
        spec, storage_path=storage[0], storage_filesystem=storage[1], name=f"train-{trial_id}",
        use_gpu=use_gpu, callbacks=[TuneReportCallback()],
    )
    try:
        trainer.fit()
    except ControllerError as err:
        if type(err.controller_failure).__name__ != "WorkerGroupStartupTimeoutError":
            raise
        import ray

        t = experiment.train
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        raise WorkerPlacementError(
            f"the worker group was not placed: it needs {trial_demand(experiment, use_gpu).describe()}; "
            f"the cluster has {describe_nodes(nodes)}; waited {1 + t.max_failures} x "
            f"train.placement_timeout_s = {t.placement_timeout_s:g} s") from None


class PlacementWatch(Callback, Stopper):
    """Ends the sweep when trials have waited ``timeout`` seconds with none running and the
    cluster has not had the resources one of them asks for (``demand``, an in-trial worker's CPUs
    and GPUs) free all that time, autoscaler or not: a slow trial start on a busy machine is not
    a missing resource. Ray Train trials run while their worker group waits (they ask for nothing
    the workers need); their bound is Ray Train's."""

    stuck = False  # class-wide: a resumed sweep runs the instance Tune restored, not ours

    def __init__(self, timeout: float, demand: dict[str, float]) -> None:
        self.timeout, self.demand, self.since = timeout, {k.upper(): v for k, v in demand.items()}, None
        PlacementWatch.stuck = False

    def __getstate__(self) -> dict:  # Tune saves it with the experiment; a resume starts afresh
        return {"timeout": self.timeout, "demand": self.demand, "since": None}

    def _room(self) -> bool:
        import ray

        free = ray.available_resources()
        return all(free.get(k, 0.0) >= v for k, v in self.demand.items() if v > 0 and k != "MEMORY")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        statuses = {t.status for t in trials}
        if "RUNNING" in statuses or "PENDING" not in statuses:
            self.since = None
        elif self.since is None:
            self.since = time.monotonic()
        elif time.monotonic() - self.since > self.timeout:
            if self._room():  # the resources are there: the trial is merely starting
                self.since = time.monotonic()
            else:
                PlacementWatch.stuck = True

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return PlacementWatch.stuck


def _uri(path: str | None, arrow_fs: Any) -> str | None:
    """Ray reports checkpoint paths within its filesystem; make them URIs again."""
    if path is None or arrow_fs is None or "://" in path:
        return path
    return f"s3://{path}"


CREDENTIAL_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                  "AWS_SECURITY_TOKEN"})


def _keep_credentials_out_of_runtime_envs() -> None:
    """Tune copies the driver's AWS keys into every trial actor's ``runtime_env``, and Ray's
    runtime-env agent logs each runtime env in plain text (``runtime_env_agent.log``, which the
    dashboard shows). Trial processes get credentials the way every other Ray process does: from
    the environment Ray was started with (locally, the driver's) or the node's instance profile."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = frozenset(class_cache.ENV_VARS_TO_PROPAGATE) - CREDENTIAL_VARIABLES


def _history(result: Any) -> tuple[dict, ...]:
    """Per-epoch metrics of one trial (losses, images seen, objectives when evaluated): the
    history its last report carries, or (a trial that never reported) none."""
    last = (result.metrics or {}).get("history")
    return tuple(json.loads(last)) if isinstance(last, str) else ()


def trial_resources(exp: Experiment, use_gpu: bool) -> dict[str, float]:
    """What the trial process itself reserves: an in-trial worker's CPUs and (fraction of a) GPU;
    a Ray Train trial nothing its workers need, since its worker group reserves the real
    resources. Tune needs a non-empty bundle, so it holds one byte of Ray's ``memory`` resource:
    with 0.001 CPU instead, a trial whose workers need every CPU never started (2.001 of 2)."""
    if exp.train.in_trial:
        return {"cpu": exp.train.cpus_per_worker, "gpu": exp.train.gpus_per_worker if use_gpu else 0}
    return {"cpu": 0, "memory": 1}


def _number(result: Any, fallback: int) -> int:
    """The trial's creation index: Tune's trial folder is ``<trainable>_<id>_<index>_<params>_...``
    (1-based, the order in which Optuna was asked, so Optuna's trial number is ``index - 1``)."""
    match = re.search(r"_[0-9a-f]{5,}_(\d+)_", Path(result.path).name)
    return int(match.group(1)) - 1 if match else fallback


def make_scheduler(exp: Experiment, full_images: int) -> MOASHA | None:
    """``search.scheduler``: MO-ASHA on the objectives measured per model, deciding per
    configuration (replicates follow their trial), or None for no early stopping."""
    s = exp.search
    if s.scheduler != "mo_asha":
        return None
    per_model = [o for o in s.objectives if objective_source(o.name).kind != "cross_model"]
    if len(per_model) < 2:
        raise UserError("search.scheduler: mo_asha ranks trials at each rung by objectives each model has; "
                        "udr needs all of a trial's replicates, so give two other objectives")
    min_images = s.min_images or max(1, int(full_images / s.reduction_factor ** 2))
    if min_images >= full_images:
        raise UserError(f"search.min_images: {min_images} is not below a trial's full budget of {full_images} "
                        "images (train.epochs x the training images); lower it or train longer")
    return MOASHA(objectives=[o.name for o in per_model], directions=[o.direction for o in per_model],
                  min_images=min_images, max_images=full_images, reduction_factor=s.reduction_factor,
                  brackets=s.brackets, seed=exp.seed, group_key=TRIAL_KEY)


def run_trials(exp: Experiment, *, storage: str, extractor_path: Path | None, use_gpu: bool,
               journal: Path, cluster: dict[str, float], resume: bool = False,
               full_images: int | None = None) -> list[TrialOutcome]:
    """Run (or, with ``resume``, continue) the study with Tune's storage at URI ``storage``
    (local or s3://) and the Optuna study in the ``journal`` file; returns every replicate's
    outcome, in Optuna's trial order. ``full_images``: a trial's full budget in images seen (for
    early stopping; a trial that ends below it was stopped)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    arrow_fs, storage_path = arrow_filesystem(storage)
    watch = PlacementWatch(exp.train.placement_timeout_s, trial_resources(exp, use_gpu))
    scheduler = make_scheduler(exp, full_images) if full_images else None
    rungs = tuple(int(r) for bracket in scheduler.rung_budgets for r in bracket) if scheduler else ()
    objectives = [o.name for o in exp.search.objectives]
    directions = [o.direction for o in exp.search.objectives]
    params = exp.params()
    searched = {n: _domain(p) for n, p in params.items() if not p.fixed}
    fixed = {n: p.values[0] for n, p in params.items() if p.fixed}
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial, experiment=exp, fixed=fixed, extractor_path=None if extractor_path is None else str(extractor_path),
            storage=(join(storage_path, "train"), arrow_fs), use_gpu=use_gpu, rungs=rungs,
        ),
        trial_resources(exp, use_gpu),
    )
    # with a pyarrow filesystem, Ray wants paths inside it (``bucket/prefix``), never the URI
    experiment_path = join(storage_path, "tune")
    if resume and tune.Tuner.can_restore(experiment_path, storage_filesystem=arrow_fs):
        # finished trials keep their results; unfinished and crashed ones continue from their
        # last checkpoint; the searcher (and its Optuna study) is restored with the experiment
        tuner = tune.Tuner.restore(experiment_path, trainable, resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=arrow_fs)
    else:
        optuna_search = OptunaSearch(
            metric=objectives, mode=directions, sampler=make_sampler(exp),
            study_name=exp.name, storage=JournalStorage(JournalFileBackend(str(journal))),
            points_to_evaluate=union_grid(exp),
        )
        searcher = ReplicatedSearch(optuna_search, replicates=exp.search.replicates, objectives=objectives,
                                    modes=directions, fixed_seed=int(fixed.get("seed", exp.seed)),
                                    full_images=full_images)
        # in-trial workers are restarted by Tune; worker groups by Ray Train (never both)
        retries = exp.train.max_failures if exp.train.in_trial else 0
        tuner = tune.Tuner(
            trainable,
            param_space=searched,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=scheduler,
                num_samples=trials_wanted(exp) * exp.search.replicates,  # Tune trials are replicates
                max_concurrent_trials=max_concurrent(exp, cluster, use_gpu),
                # an in-trial process keeps its imports (torch's optimiser pulls in torch._dynamo,
                # seconds) and its warm allocator for the next trial instead of starting afresh
                reuse_actors=exp.train.in_trial,
            ),
            run_config=tune.RunConfig(
                name="tune", storage_path=storage_path, storage_filesystem=arrow_fs, verbose=1,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                failure_config=tune.FailureConfig(max_failures=retries),
                callbacks=[watch, CheckpointLedger(), *([scheduler.checkpoint_callback()] if scheduler else []),
                           *tracker_callbacks(exp.tracking, exp.name, fixed_params=fixed)],
                stop=watch,
            ),
        )
    _keep_credentials_out_of_runtime_envs()
    replicates.GROUP_OBJECTIVES = lambda uris: cross_model_objectives(exp, uris)
    results = tuner.fit()
    if PlacementWatch.stuck:
        import ray

        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        raise UserError(
            f"train: no trial could be placed within train.placement_timeout_s = "
            f"{exp.train.placement_timeout_s:g} s: each needs {trial_demand(exp, use_gpu).describe()}; "
            f"the cluster has {describe_nodes(nodes)}; --resume continues once it has room")
    # Ctrl-C: Tune saves its state and returns; trials still running or never started must be
    # continued with --resume, not written down as failed
    expected = trials_wanted(exp) * exp.search.replicates
    unfinished = max(len(results), expected) - results.num_terminated - results.num_errors
    if unfinished > 0:
        raise Interrupted(f"{unfinished} of {expected} trial replicates did not finish")
    fail_orphans(journal)
    per_model = [o for o in objectives if objective_source(o).kind != "cross_model"]
    outcomes = []
    for result in results:
        trial_id = result.metrics.get("trial_id") or Path(result.path).name
        metrics = {k: v for k, v in result.metrics.items() if not isinstance(v, dict) and k != "history"}
        ok = result.error is None and not metrics.get("stopped") and all(finite(metrics.get(o)) for o in per_model)
        early = ok and full_images is not None and (metrics.get("images_seen") or 0) < full_images
        error = None
        if early:  # MO-ASHA stopped it at a rung: its last objectives are the rung's
            error = f"stopped early at {metrics.get('images_seen')} of {full_images} images (search.scheduler)"
        elif result.error is not None:
            error = failure_reason(result.error)
        elif metrics.get("stopped"):  # diverged, out of memory or over its time limit (train/loop.py)
            error = metrics["stopped"]
        elif not ok:
            error = "objectives were not finite: " + ", ".join(f"{o}={metrics.get(o)}" for o in per_model)
        config = dict(result.config or {})
        number, replicate = config.pop(TRIAL_KEY, None), config.pop(REPLICATE_KEY, 0)
        outcomes.append(TrialOutcome(
            number=_number(result, len(outcomes)) if number is None else int(number),
            replicate=int(replicate),
            trial_id=trial_id,
            params={**fixed, **config},
            status="stopped" if early else "ok" if ok else "failed",
            error=error,
            metrics=metrics,
            checkpoint_uri=_uri(metrics.get("checkpoint_path")
                                or (result.checkpoint.path if result.checkpoint is not None else None), arrow_fs),
            history=_history(result),
        ))
    outcomes = one_per_replicate(outcomes, range(trials_wanted(exp)), exp.search.replicates,
                                 lambda number: {**fixed, **trial_params(journal, number)})
    _add_group_objectives(outcomes, exp)
    return outcomes


def _add_group_objectives(outcomes: list[TrialOutcome], exp: Experiment) -> None:
    """Objectives across replicates (udr) on every replicate's outcome, from its trial's group."""
    across = [o.name for o in exp.search.objectives if objective_source(o.name).kind == "cross_model"]
    if not across:
        return
    groups: dict[int, list[TrialOutcome]] = {}
    for o in outcomes:
        if o.status == "ok" and o.checkpoint_uri:
            groups.setdefault(o.number, []).append(o)
    for members in groups.values():
        if len(members) < 2:
            for o in members:
                o.metrics.update({name: math.nan for name in across})
            continue
        found = cross_model_objectives(exp, [o.checkpoint_uri for o in members])
        for i, o in enumerate(members):
            o.metrics.update({name: float(found[name][i]) for name in across})
