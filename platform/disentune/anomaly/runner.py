"""Anomaly detection over a finished run: one Ray task per (trial, detector, benchmark).

Each task loads the trial's final checkpoint, builds the benchmark split (seeded by the trial's
seed and the benchmark's name, so every detector of a trial sees the same images), computes the
detector's features in each of its feature spaces, fits on the normal images and scores the test
images. It writes ``anomaly_scores.parquet`` (one row per test sample) and then
``anomaly_metrics.parquet`` (AUROC, AUPR, FPR at 95 % TPR, F1 at the contamination threshold),
each as one part named after (trial, detector, benchmark): a re-run replaces a part instead of
adding rows, and a (trial, detector, benchmark) counts as done once its metrics part exists.

The ``subset_scan`` detector also runs the group scan of the creativity study in each scan space
(over the normal, the anomalous and all test samples; protocol and cost bound in
:mod:`disentune.anomaly.groups`) and writes ``anomaly_groups.parquet`` (schema
``reports.anomaly_schema.ANOMALY_GROUPS``): each group's sample subset, node subset, score and
alpha, and its per-sample node frequencies. Its part is written before the metrics part, and a
``subset_scan`` task counts as done only once both exist (runs from before the group scan redo
their subset scans).

``anomaly.scan_spaces`` (and ``latent_spaces``) may name several layers; each model scans those
it has. A layer under a top-level module the model lacks (``encoder.*`` of a GAN,
``discriminator.*`` of a VAE) is skipped for that model, so one list serves a sweep over several
families; any other unknown layer fails the task naming the model's layers.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa

from disentune.anomaly.groups import (
    GROUPS_TABLE,
    GroupResult,
    GroupSettings,
    group_rows,
    groups_table,
    part_name,
    scan_groups,
    space_entropy,
    written_parts,
)
from disentune.config import AnomalyConfig, DataConfig, anomaly_from_dict
from disentune.data.ground_truth import Region
from disentune.errors import UserError
from disentune.evaluate import Model, run_config, trained_models
from disentune.parallel import run_tasks
from disentune.reports import schema
from disentune.reports.storage import append_table, read_dataset, read_table
from disentune.storage import join

METRICS_TABLE = "anomaly_metrics.parquet"
SCORES_TABLE = "anomaly_scores.parquet"


@dataclass(frozen=True)
class Job:
    run_uri: str
    model: Model  # one replicate of a trial
    detector: str
    benchmark: str
    data: DataConfig
    cfg: AnomalyConfig

    @property
    def key(self) -> str:
        return f"{self.model.trial_id}/{self.detector}/{self.benchmark}"

    @property
    def trial_number(self) -> int:
        return self.model.trial_number


@dataclass
class AnomalyResult:
    run_uri: str
    done: list[Job] = field(default_factory=list)
    skipped: int = 0
    not_applicable: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"anomaly detection: {len(self.done)} (trial, detector, benchmark) tasks in "
                 f"{self.seconds:.0f} s; {self.skipped} already done; {self.not_applicable} not applicable "
                 f"to the model; {len(self.failed)} failed"]
        lines += [f"  FAILED #{j.trial_number} {j.detector} on {j.benchmark}: {why}" for j, why in self.failed]
        lines.append(f"table: {join(self.run_uri, METRICS_TABLE)}")
        return "\n".join(lines)


def split_seed(trial_seed: int, benchmark: str) -> int:
    return int(np.random.SeedSequence([trial_seed, zlib.crc32(benchmark.encode())]).generate_state(1)[0] >> 1)


def applies(detector: str, variant: str) -> bool:
    """Whether a registered detector can score a model of this variant (anomaly/catalog.py: the
    negative ELBO needs a posterior, the discriminator score a discriminator)."""
    from disentune.registry import DETECTORS, MODELS

    return bool(DETECTORS.get(detector).applies(MODELS.get(variant)))


@dataclass(frozen=True)
class SpaceResult:
    """One detector on one benchmark in one feature space: its metrics and per-sample scores."""

    space: str
    metrics: dict[str, float]
    labels: np.ndarray  # (n_test,) 1 = anomalous
    scores: np.ndarray  # (n_test,) higher = more anomalous
    subset_size: np.ndarray | None  # subset scanning: nodes in each sample's best subset
    alpha: np.ndarray | None
    fit_seconds: float
    score_seconds: float
    n_normal: int
    n_anomalous: int
    groups: tuple[GroupResult, ...] = ()  # subset scanning: the normal, anomalous and all-sample group scans


_SIDES = ("encoder", "decoder", "generator", "discriminator")  # features.py's top-level modules


def resolve_spaces(model, chosen: Sequence[str]) -> list[str]:
    """The feature spaces ``model`` scans of the configured ``chosen``: ``activation`` becomes its
    default layer, repeats are dropped, and a layer under one of the family modules (encoder,
    decoder, generator, discriminator) that this model lacks is skipped (see the module docstring)."""
    from disentune.anomaly.features import default_layer

    tops = {name for name, _ in model.named_children()}
    spaces: list[str] = []
    for space in chosen:
        if space == "activation":
            space = f"activation:{default_layer(model)}"
        top = space.split(":", 1)[1].split(".")[0] if space.startswith("activation:") else None
        if top in _SIDES and top not in tops:
            continue
        if space not in spaces:
            spaces.append(space)
    if not spaces:
        raise UserError(f"{type(model).__name__} has none of the feature spaces {', '.join(chosen)} "
                        f"(its top-level modules: {', '.join(sorted(tops))})")
    return spaces


def _group_scans(fitted, test: np.ndarray, labels: np.ndarray, nodes: np.ndarray, cfg: AnomalyConfig,
                 entropy: tuple[int, int]) -> tuple[GroupResult, ...]:
    """The group scans of one space on the p-values the per-sample scan read (``groups`` module)."""
    from disentune.anomaly.pvalues import empirical_pvalues

    pvalues = empirical_pvalues(test, fitted.background_, tails=fitted.tails, convention=fitted.convention)
    return scan_groups(pvalues.pmin, pvalues.pmax, labels, nodes, statistic=fitted.statistic,
                       alpha_max=fitted.alpha_max, settings=GroupSettings.from_config(cfg), entropy=entropy)


def score_benchmark(model, data, regions: tuple[Region, ...], detector: str, benchmark: str, cfg: AnomalyConfig,
                    *, seed: int, device, group_scans: bool = False) -> list[SpaceResult]:
    """Fit ``detector`` on the benchmark's normal images and score its test images, in each of
    the detector's feature spaces; the split is drawn from ``seed`` (see :func:`split_seed`).
    With ``group_scans`` (the runner's tasks), ``subset_scan`` also runs the group scans of
    :mod:`disentune.anomaly.groups` in each space (``SpaceResult.groups``)."""
    from disentune.anomaly.benchmarks import Context, make_split
    from disentune.anomaly.features import features
    from disentune.anomaly.scoring import anomaly_metrics
    from disentune.metrics.model_io import code_ranges, decode_codes
    from disentune.registry import DETECTORS

    spec = DETECTORS.get(detector)
    ctx = Context(data, regions, lambda codes: decode_codes(model, codes, device), code_ranges(model),
                  num_fit=cfg.num_fit, num_test=cfg.num_test)
    split = make_split(benchmark, ctx, np.random.default_rng(seed))
    if spec.kind == "model":
        spaces = ["model"]
    else:
        spaces = resolve_spaces(model, cfg.scan_spaces if spec.spaces == "scan" else cfg.latent_spaces)
    results = []
    for space in spaces:
        began = time.perf_counter()
        subset_size = alpha = None
        groups: tuple[GroupResult, ...] = ()
        if space == "model":
            fit_seconds = 0.0
            scores = spec.score(model, split.test, device)
        else:
            fitted = spec.make(cfg).fit(features(model, split.fit, space, device))
            fit_seconds = time.perf_counter() - began
            began = time.perf_counter()
            test = features(model, split.test, space, device)
            if hasattr(fitted, "scan"):  # subset scanning: subsets and alphas too
                scan = fitted.scan(test)
                scores, subset_size, alpha = scan.score, scan.size, scan.alpha
            else:
                scores = fitted.score(test)
        score_seconds = time.perf_counter() - began  # the per-sample detector's; each group scan times itself
        if space != "model" and group_scans and hasattr(fitted, "scan"):
            groups = _group_scans(fitted, test, split.labels, scan.nodes, cfg, space_entropy(seed, space))
        results.append(SpaceResult(space, anomaly_metrics(split.labels, scores, contamination=cfg.contamination),
                                   split.labels, np.asarray(scores), subset_size, alpha, fit_seconds, score_seconds,
                                   split.n_normal, split.n_anomalous, groups))
    return results


def run_job(job: Job) -> int:
    """Score one (trial, detector, benchmark); writes the tables' parts (scores, groups for
    subset scanning, then metrics, the done marker); returns the metric rows."""
    import torch

    from disentune.checkpoints import load_model_uri
    from disentune.data.open import open_dataset

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = open_dataset(job.data)
    model, _ = load_model_uri(job.model.checkpoint_uri, device)
    seed = split_seed(job.model.seed, job.benchmark)
    results = score_benchmark(model, data, job.data.exclude, job.detector, job.benchmark, job.cfg, seed=seed,
                              device=device, group_scans=True)
    common = {"trial_id": job.model.trial_id, "trial_number": job.model.trial_number,
              "replicate": job.model.replicate, "detector": job.detector, "benchmark": job.benchmark, "seed": seed}
    metric_rows = [{
        **common, "feature_space": r.space, "metric": name, "value": float(value), "n_normal": r.n_normal,
        "n_anomalous": r.n_anomalous, "fit_seconds": r.fit_seconds, "score_seconds": r.score_seconds,
    } for r in results for name, value in r.metrics.items()]
    score_rows = [{
        **common, "feature_space": r.space, "sample": i, "label": int(r.labels[i]), "score": float(r.scores[i]),
        "subset_size": None if r.subset_size is None else int(r.subset_size[i]),
        "alpha": None if r.alpha is None else float(r.alpha[i]),
    } for r in results for i in range(len(r.scores))]
    append_table(pa.Table.from_pylist(score_rows, schema=schema.ANOMALY_SCORES), join(job.run_uri, SCORES_TABLE),
                 key=job.key)
    group_table_rows = [row for r in results if r.groups for row in group_rows(
        common, r.space, r.groups, statistic=job.cfg.scan_statistic, alpha_max=job.cfg.alpha_max,
        settings=GroupSettings.from_config(job.cfg))]
    if group_table_rows:
        append_table(groups_table(group_table_rows), join(job.run_uri, GROUPS_TABLE), key=job.key)
    append_table(pa.Table.from_pylist(metric_rows, schema=schema.ANOMALY_METRICS), join(job.run_uri, METRICS_TABLE),
                 key=job.key)
    return len(metric_rows)


def run_setup(run_uri: str) -> tuple[DataConfig, AnomalyConfig]:
    """The run's data (with its excluded regions) and anomaly config, from ``experiment.json``."""
    setup = run_config(run_uri)
    try:
        return setup.data, anomaly_from_dict(setup.stored.get("anomaly") or {})
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{join(run_uri, 'experiment.json')}: not a readable experiment description") from None


def front_trials(run_uri: str) -> set[int]:
    """The numbers of the trials on the run's Pareto front (from ``pareto.parquet``)."""
    pareto = read_table(join(run_uri, "pareto.parquet"))
    return {r["trial_number"] for r in pareto.to_pylist() if r["on_front"]}


def plan(run_uri: str, detectors: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None,
         trials: set[int] | None = None, setup: tuple | None = None) -> tuple[list[Job], int, int]:
    """Jobs still to do, how many are done already, and how many do not apply to their model
    (only for the trial numbers in ``trials`` when given; ``setup`` is :func:`run_setup`'s answer)."""
    from disentune.anomaly.benchmarks import benchmark_names

    data, cfg = setup or run_setup(run_uri)
    detectors = tuple(detectors or cfg.detectors)
    benchmarks = tuple(benchmarks or cfg.benchmarks or benchmark_names(data.exclude))
    done_table = read_dataset(join(run_uri, METRICS_TABLE), schema.ANOMALY_METRICS)
    done = set(zip(done_table["trial_id"].to_pylist(), done_table["detector"].to_pylist(),
                   done_table["benchmark"].to_pylist()))
    grouped = written_parts(join(run_uri, GROUPS_TABLE))  # subset_scan: done once its group scans are too
    jobs, skipped, not_applicable = [], 0, 0
    for m in trained_models(run_uri):
        if trials is not None and m.trial_number not in trials:
            continue
        for detector in detectors:
            if not applies(detector, m.variant):
                not_applicable += len(benchmarks)
                continue
            for benchmark in benchmarks:
                job = Job(run_uri, m, detector, benchmark, data, cfg)
                if (m.trial_id, detector, benchmark) in done and (
                        detector != "subset_scan" or part_name(job.key) in grouped):
                    skipped += 1
                    continue
                jobs.append(job)
    return jobs, skipped, not_applicable


def check_request(detectors: Sequence[str] | None, benchmarks: Sequence[str] | None) -> None:
    """Refuse unknown detector or benchmark names (one line) before any work starts."""
    from disentune.registry import DETECTORS, benchmark_family

    for name in detectors or ():
        if name not in DETECTORS:
            raise UserError(f"--detectors: unknown detector {name!r}; choose from {', '.join(DETECTORS.names())}")
    for name in benchmarks or ():
        benchmark_family(name)


def detect_run(run_uri: str, *, detectors: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None,
               front_only: bool = False, address: str = "local", num_cpus: int | None = None) -> AnomalyResult:
    """Run every missing (trial, detector, benchmark) of a finished run as parallel Ray tasks
    (of the Pareto front's trials only, with ``front_only``)."""
    began = time.perf_counter()
    trials = front_trials(run_uri) if front_only else None
    setup = run_setup(run_uri)
    jobs, skipped, not_applicable = plan(run_uri, detectors, benchmarks, trials, setup)
    cfg = setup[1]
    done, failed = run_tasks(run_job, jobs, num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task,
                             use_gpu=cfg.use_gpu, address=address, local_cpus=num_cpus,
                             describe=lambda j: f"anomaly #{j.trial_number} {j.detector} on {j.benchmark}")
    return AnomalyResult(run_uri, done, skipped, not_applicable, failed, time.perf_counter() - began)
