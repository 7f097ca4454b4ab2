"""The metric suite over a finished run: one Ray task per (trial, metric), results in Parquet.

``evaluations.parquet`` is a long table (one row per trial and metric value, see
:data:`~disentune.reports.schema.EVALUATIONS`) kept as a folder of part files. Each task writes
its own part atomically when its metric is done, so an interrupted evaluation keeps every finished
(trial, metric) and a re-run computes only what is missing. A part's name is derived from its
(trial, metric), so even a pair computed twice (two evaluations racing) replaces its part rather
than adding rows; readers also keep only the newest row per (trial, metric).

Each task loads the trial's final checkpoint (local or ``s3://``), renders or reads the cached
dataset, loads the feature networks (the dataset-factor network; Inception-v3 from the user's
weights file when the run names one) and runs :func:`disentune.metrics.suite.run_metric` with
the seed derived from the trial's seed and the metric's name.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from disentune.config import EvaluationConfig, evaluation_from_dict
from disentune.errors import ConfigError, UserError
from disentune.parallel import run_tasks
from disentune.registry import METRICS
from disentune.reports import schema
from disentune.reports.storage import append_table, read_dataset, read_table
from disentune.storage import join, read_bytes

TABLE = "evaluations.parquet"


@dataclass(frozen=True)
class Job:
    """One metric of one trial: everything a task needs, nothing it has to look up."""

    run_id: str
    trial_number: int
    trial_id: str
    checkpoint_uri: str
    seed: int
    metric: str
    params: dict[str, Any]
    dataset: str
    resolution: int
    inception_weights: str | None
    output: str


@dataclass
class EvaluationResult:
    run_uri: str
    done: list[Job] = field(default_factory=list)
    skipped: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"evaluated {len(self.done)} (trial, metric) pairs in {self.seconds:.0f} s; "
                 f"{self.skipped} already done; {len(self.failed)} failed"]
        lines += [f"  FAILED #{j.trial_number} {j.metric}: {why}" for j, why in self.failed]
        lines.append(f"table: {join(self.run_uri, TABLE)}")
        return "\n".join(lines)


def run_job(job: Job) -> int:
    """Compute one job's metric and append its rows to the evaluations table; returns the row count."""
    import torch

    from disentune.metrics.factor_net import EXTRACTOR_SEED, ensure_factor_net, load_extractor
    from disentune.metrics.suite import ModelInputs, metric_seed, run_metric
    from disentune.registry import DATASETS
    from disentune.checkpoints import load_model_uri

    metric = METRICS.get(job.metric)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = DATASETS.get(job.dataset)(resolution=job.resolution)
    data.render()
    factor_net = load_extractor(ensure_factor_net(data, job.dataset, job.resolution, seed=EXTRACTOR_SEED), device)
    quality = factor_net
    if metric.kind == "quality" and job.inception_weights:
        from disentune.metrics.inception import load_inception

        quality = load_inception(job.inception_weights, device)
    model, _ = load_model_uri(job.checkpoint_uri, device)
    seed = metric_seed(job.seed, job.metric)
    values, seconds = run_metric(metric, ModelInputs(model, data, quality, factor_net, device),
                                 seed=seed, params=job.params)
    now = dt.datetime.now(dt.timezone.utc)
    rows = [{
        "run_id": job.run_id, "trial_number": job.trial_number, "trial_id": job.trial_id,
        "suite_metric": job.metric, "metric": v.metric, "value": v.value,
        "params": json.dumps(v.params, sort_keys=True, default=str), "seed": seed,
        "seconds": seconds, "created_at": now,
    } for v in values]
    append_table(pa.Table.from_pylist(rows, schema=schema.EVALUATIONS), job.output,
                 key=f"{job.trial_id}/{job.metric}")
    return len(rows)


def read_evaluations(run_uri: str) -> pa.Table:
    """The run's evaluations, newest row per (trial, metric), sorted by trial and metric."""
    from disentune.reports.build import latest_evaluations

    table = latest_evaluations(read_dataset(join(run_uri, TABLE), schema.EVALUATIONS))
    return table.sort_by([("trial_number", "ascending"), ("metric", "ascending")])


def run_config(run_uri: str) -> tuple[str, int, EvaluationConfig, str]:
    """``(dataset, resolution, evaluation config, run id)`` from the run's ``experiment.json``."""
    where = join(run_uri, "experiment.json")
    try:
        stored = json.loads(read_bytes(where))["experiment"]
    except UserError as err:
        raise UserError(f"{run_uri}: not a disentune run ({str(err).rsplit(': ', 1)[-1]})") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{where}: not a readable experiment description") from None
    return (stored["data"]["dataset"], int(stored["data"]["resolution"]),
            evaluation_from_dict(stored.get("evaluation") or {}), stored.get("name", "run"))


def trained_trials(run_uri: str) -> list[dict]:
    """Rows of ``trials.parquet`` that finished with a checkpoint: what the evaluators score."""
    trials = read_table(join(run_uri, "trials.parquet"))
    ok = trials.filter(pc.and_(pc.equal(trials["status"], "ok"), pc.is_valid(trials["checkpoint_uri"])))
    return ok.to_pylist()


def plan(run_uri: str, metrics: Sequence[str] | None = None,
         setup: tuple[str, int, EvaluationConfig, str] | None = None) -> tuple[list[Job], int]:
    """The jobs still to do for ``metrics`` (default: the run's configured suite) and how many
    (trial, metric) pairs are already in the table. ``setup`` is :func:`run_config`'s answer
    when the caller has read it already."""
    dataset, resolution, cfg, run_id = setup or run_config(run_uri)
    names = check_metrics(metrics) if metrics else cfg.suite
    done = read_dataset(join(run_uri, TABLE), schema.EVALUATIONS)
    finished = set(zip(done["trial_id"].to_pylist(), done["suite_metric"].to_pylist()))
    jobs, skipped = [], 0
    for t in trained_trials(run_uri):
        for name in names:
            if (t["trial_id"], name) in finished:
                skipped += 1
                continue
            jobs.append(Job(
                run_id=run_id, trial_number=t["trial_number"], trial_id=t["trial_id"],
                checkpoint_uri=t["checkpoint_uri"], seed=int(t["seed"] or 0), metric=name,
                params=dict(cfg.metric_params.get(name, {})), dataset=dataset, resolution=resolution,
                inception_weights=cfg.inception_weights, output=join(run_uri, TABLE),
            ))
    return jobs, skipped


def evaluate_run(run_uri: str, *, metrics: Sequence[str] | None = None, address: str = "local",
                 num_cpus: int | None = None) -> EvaluationResult:
    """Run every missing (trial, metric) of a finished run as parallel Ray tasks."""
    began = time.perf_counter()
    setup = run_config(run_uri)
    jobs, skipped = plan(run_uri, metrics, setup)
    cfg = setup[2]
    done, failed = run_tasks(run_job, jobs, num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task,
                             use_gpu=cfg.use_gpu, address=address, local_cpus=num_cpus,
                             describe=lambda j: f"evaluate #{j.trial_number} {j.metric}")
    return EvaluationResult(run_uri, done, skipped, failed, time.perf_counter() - began)


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """Validate a ``--metrics`` list before any work starts (a one-line ConfigError)."""
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"--metrics: unknown metric {name!r}; choose from {', '.join(METRICS.names())}")
    return tuple(names)
