"""The metric suite over a finished run: one Ray task per (model, metric), results in Parquet.

The models are the run's successful replicates (``replicates.parquet``; one per trial in an
unreplicated run), each scored on its own; the report shows a trial's median. A metric that
compares models (``kind="cross_model"``: UDR) runs as one task per group of models with the same
latent size, across all the trials of the run, and writes one row per model.

``evaluations.parquet`` is a long table (one row per model and metric value, see
:data:`~disentune.reports.schema.EVALUATIONS`) kept as a folder of part files. Each task writes
its own part atomically when its metric is done, so an interrupted evaluation keeps every finished
(model, metric) and a re-run computes only what is missing. A part's name is derived from its
(model, metric), so even a pair computed twice (two evaluations racing) replaces its part rather
than adding rows; readers also keep only the newest row per (model, metric).

Each task loads the model's final checkpoint (local or ``s3://``), opens the run's dataset (the
shared cache), loads the feature networks (the dataset-factor network where the data has factors;
Inception-v3 from the user's weights file when the run names one) and runs
:func:`disentune.metrics.suite.run_metric` with the seed derived from the model's seed and the
metric's name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from disentune.config import DataConfig, EvaluationConfig, data_from_dict, evaluation_from_dict
from disentune.errors import ConfigError, UserError
from disentune.parallel import run_tasks
from disentune.registry import METRICS
from disentune.reports import schema
from disentune.reports.storage import append_table, read_dataset, read_table
from disentune.storage import exists, join, read_bytes

TABLE = "evaluations.parquet"


@dataclass(frozen=True)
class Model:
    """One trained model of a run: a trial's replicate."""

    trial_number: int
    replicate: int
    trial_id: str  # the replicate's own id
    checkpoint_uri: str
    seed: int
    latent_dim: int | None = None
    variant: str | None = None


@dataclass(frozen=True)
class Job:
    """One metric of one model (or, for a cross-model metric, of several): everything a task
    needs, nothing it has to look up."""

    run_id: str
    models: tuple[Model, ...]
    metric: str
    params: dict[str, Any]
    data: DataConfig
    evaluation: EvaluationConfig
    output: str

    @property
    def trial_number(self) -> int:
        return self.models[0].trial_number

    def describe(self) -> str:
        if len(self.models) == 1:
            return f"evaluate #{self.trial_number} {self.metric}"
        return f"evaluate {self.metric} across {len(self.models)} models"


@dataclass
class EvaluationResult:
    run_uri: str
    done: list[Job] = field(default_factory=list)
    skipped: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"evaluated {len(self.done)} (model, metric) tasks in {self.seconds:.0f} s; "
                 f"{self.skipped} already done; {len(self.failed)} failed"]
        lines += [f"  FAILED {j.describe()}: {why}" for j, why in self.failed]
        lines.append(f"table: {join(self.run_uri, TABLE)}")
        return "\n".join(lines)


def _inputs(job: Job, data, device, checkpoint_uri: str, needs_quality: bool):
    from disentune.checkpoints import load_model_uri
    from disentune.data.open import data_key
    from disentune.metrics.factor_net import EXTRACTOR_SEED, ensure_factor_net, load_extractor
    from disentune.metrics.suite import ModelInputs

    factor_net = None
    if data.has_factors:
        path = ensure_factor_net(data, data_key(job.data.dataset, data), job.data.resolution, seed=EXTRACTOR_SEED)
        factor_net = load_extractor(path, device)
    quality = factor_net
    if needs_quality and job.evaluation.inception_weights:
        from disentune.metrics.inception import load_inception

        quality = load_inception(job.evaluation.inception_weights, device, kind=job.evaluation.inception_kind)
    model, _ = load_model_uri(checkpoint_uri, device)
    return ModelInputs(model, data, quality, factor_net, device)


def run_job(job: Job) -> int:
    """Compute one job's metric and append its rows to the evaluations table; returns the row count."""
    import torch

    from disentune.data.open import open_dataset
    from disentune.metrics.suite import metric_seed, run_cross_model, run_metric

    metric = METRICS.get(job.metric)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = open_dataset(job.data)
    quality = metric.kind == "quality"
    if metric.kind == "cross_model":
        seed = metric_seed(min(m.seed for m in job.models), job.metric)
        inputs = [_inputs(job, data, device, m.checkpoint_uri, False) for m in job.models]
        per_model, seconds = run_cross_model(metric, inputs, seed=seed, params=job.params)
        across = {"across": "run", "models": [m.trial_id for m in job.models]}
        results = [(m, [dataclasses.replace(v, params={**v.params, **across}) for v in values], seed)
                   for m, values in zip(job.models, per_model)]
    else:
        [model] = job.models
        seed = metric_seed(model.seed, job.metric)
        values, seconds = run_metric(metric, _inputs(job, data, device, model.checkpoint_uri, quality),
                                     seed=seed, params=job.params)
        results = [(model, values, seed)]
    now = dt.datetime.now(dt.timezone.utc)
    rows = [{
        "run_id": job.run_id, "trial_number": m.trial_number, "replicate": m.replicate, "trial_id": m.trial_id,
        "suite_metric": job.metric, "metric": v.metric, "value": v.value,
        "params": json.dumps(v.params, sort_keys=True, default=str), "seed": seed,
        "seconds": seconds, "created_at": now,
    } for m, values, seed in results for v in values]
    key = job.models[0].trial_id if len(job.models) == 1 else ",".join(sorted(m.trial_id for m in job.models))
    append_table(pa.Table.from_pylist(rows, schema=schema.EVALUATIONS), job.output, key=f"{key}/{job.metric}")
    return len(rows)


def read_evaluations(run_uri: str) -> pa.Table:
    """The run's evaluations, newest row per (model, metric), sorted by trial and metric."""
    from disentune.reports.build import latest_evaluations

    table = latest_evaluations(read_dataset(join(run_uri, TABLE), schema.EVALUATIONS))
    return table.sort_by([("trial_number", "ascending"), ("replicate", "ascending"), ("metric", "ascending")])


@dataclass(frozen=True)
class RunSetup:
    """What the evaluators read from a run's ``experiment.json``."""

    run_id: str
    data: DataConfig
    evaluation: EvaluationConfig
    stored: dict


def run_config(run_uri: str) -> RunSetup:
    where = join(run_uri, "experiment.json")
    try:
        stored = json.loads(read_bytes(where))["experiment"]
    except UserError as err:
        raise UserError(f"{run_uri}: not a disentune run ({str(err).rsplit(': ', 1)[-1]})") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{where}: not a readable experiment description") from None
    try:
        return RunSetup(stored.get("name", "run"), data_from_dict(stored["data"]),
                        evaluation_from_dict(stored.get("evaluation") or {}), stored)
    except (KeyError, TypeError) as err:
        raise UserError(f"{where}: not a readable experiment description ({err})") from None


def trained_models(run_uri: str) -> list[Model]:
    """The run's successful replicates with a checkpoint (its trials, for a run without a
    replicates table): what the evaluators score."""
    trials = read_table(join(run_uri, "trials.parquet"))
    by_number = {r["trial_number"]: r for r in trials.to_pylist()}
    source = join(run_uri, "replicates.parquet")
    rows = read_table(source) if exists(source) else trials
    ok = rows.filter(pc.and_(pc.equal(rows["status"], "ok"), pc.is_valid(rows["checkpoint_uri"])))
    return [Model(r["trial_number"], int(r.get("replicate") or 0), r["trial_id"], r["checkpoint_uri"],
                  int(r["seed"] or 0), by_number[r["trial_number"]].get("latent_dim"),
                  by_number[r["trial_number"]].get("variant"))
            for r in ok.to_pylist() if by_number.get(r["trial_number"], {}).get("status") == "ok"]


def plan(run_uri: str, metrics: Sequence[str] | None = None, setup: RunSetup | None = None) -> tuple[list[Job], int]:
    """The jobs still to do for ``metrics`` (default: the run's configured suite) and how many
    (model, metric) pairs are already in the table."""
    setup = setup or run_config(run_uri)
    cfg = setup.evaluation
    names = check_metrics(metrics) if metrics else cfg.suite
    done = read_dataset(join(run_uri, TABLE), schema.EVALUATIONS)
    finished = set(zip(done["trial_id"].to_pylist(), done["suite_metric"].to_pylist()))
    models = trained_models(run_uri)
    jobs, skipped = [], 0

    def job(members: Sequence[Model], name: str) -> Job:
        return Job(setup.run_id, tuple(members), name, dict(cfg.metric_params.get(name, {})), setup.data, cfg,
                   join(run_uri, TABLE))

    for name in names:
        if METRICS.get(name).kind == "cross_model":
            groups: dict[Any, list[Model]] = {}
            for m in models:
                groups.setdefault(m.latent_dim, []).append(m)
            for members in groups.values():
                if all((m.trial_id, name) in finished for m in members):
                    skipped += len(members)
                elif len(members) >= 2:
                    jobs.append(job(members, name))
            continue
        for m in models:
            if (m.trial_id, name) in finished:
                skipped += 1
            else:
                jobs.append(job([m], name))
    return jobs, skipped


def evaluate_run(run_uri: str, *, metrics: Sequence[str] | None = None, address: str = "local",
                 num_cpus: int | None = None) -> EvaluationResult:
    """Run every missing (model, metric) of a finished run as parallel Ray tasks."""
    began = time.perf_counter()
    setup = run_config(run_uri)
    jobs, skipped = plan(run_uri, metrics, setup)
    cfg = setup.evaluation
    done, failed = run_tasks(run_job, jobs, num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task,
                             use_gpu=cfg.use_gpu, address=address, local_cpus=num_cpus, describe=Job.describe)
    return EvaluationResult(run_uri, done, skipped, failed, time.perf_counter() - began)


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """Validate a ``--metrics`` list before any work starts (a one-line ConfigError)."""
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"--metrics: unknown metric {name!r}; choose from {', '.join(METRICS.names())}")
    return tuple(names)
