"""Anomaly detection over a finished run: one Ray task per (trial, detector, benchmark).

Each task loads the trial's final checkpoint, builds the benchmark split (seeded by the trial's
seed and the benchmark's name, so every detector of a trial sees the same images), computes the
detector's features in each of its feature spaces, fits on the normal images and scores the test
images. It writes ``anomaly_scores.parquet`` (one row per test sample) and then
``anomaly_metrics.parquet`` (AUROC, AUPR, FPR at 95 % TPR, F1 at the contamination threshold),
each as one part named after (trial, detector, benchmark): a re-run replaces a part instead of
adding rows, and a (trial, detector, benchmark) counts as done once its metrics part exists.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa

from disentune.config import AnomalyConfig, anomaly_from_dict
from disentune.data.ground_truth import Region
from disentune.errors import UserError
from disentune.evaluate import trained_trials
from disentune.parallel import run_tasks
from disentune.reports import schema
from disentune.reports.storage import append_table, read_dataset, read_table
from disentune.storage import join, read_bytes

METRICS_TABLE = "anomaly_metrics.parquet"
SCORES_TABLE = "anomaly_scores.parquet"
MODEL_SCORES = ("reconstruction", "neg_elbo", "discriminator")


@dataclass(frozen=True)
class Job:
    run_uri: str
    trial_id: str
    trial_number: int
    checkpoint_uri: str
    variant: str
    seed: int
    detector: str
    benchmark: str
    dataset: str
    resolution: int
    regions: tuple[Region, ...]
    cfg: AnomalyConfig

    @property
    def key(self) -> str:
        return f"{self.trial_id}/{self.detector}/{self.benchmark}"


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
    """Whether a detector can score a model of this variant: the negative ELBO needs a posterior
    (not adversarial families), the discriminator score a discriminator (adversarial ones)."""
    from disentune.registry import MODELS

    adversarial = MODELS.get(variant).adversarial
    if detector == "neg_elbo":
        return not adversarial
    if detector == "discriminator":
        return adversarial
    return True


def _make_detector(name: str, cfg: AnomalyConfig):
    from disentune.anomaly.detectors import KNN, Mahalanobis, SubsetScan

    if name == "mahalanobis":
        return Mahalanobis()
    if name == "knn":
        return KNN(k=cfg.knn_k)
    return SubsetScan(statistic=cfg.scan_statistic, alpha_max=cfg.alpha_max, tails=cfg.tails)


def run_job(job: Job) -> int:
    """Score one (trial, detector, benchmark); writes both tables' parts; returns the metric rows."""
    import torch

    from disentune.anomaly.benchmarks import Context, make_split
    from disentune.anomaly.features import default_layer, features, model_scores
    from disentune.anomaly.scoring import anomaly_metrics
    from disentune.metrics.objectives import code_ranges, decode_codes
    from disentune.registry import DATASETS
    from disentune.checkpoints import load_model_uri

    cfg = job.cfg
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = DATASETS.get(job.dataset)(resolution=job.resolution)
    data.render()
    model, _ = load_model_uri(job.checkpoint_uri, device)
    seed = split_seed(job.seed, job.benchmark)

    ctx = Context(data, job.regions, lambda codes: decode_codes(model, codes, device), code_ranges(model),
                  num_fit=cfg.num_fit, num_test=cfg.num_test)
    split = make_split(job.benchmark, ctx, np.random.default_rng(seed))

    if job.detector in MODEL_SCORES:
        spaces = ["model"]
    elif job.detector == "subset_scan":
        spaces = [f"activation:{default_layer(model)}" if s == "activation" else s for s in cfg.scan_spaces]
    else:
        spaces = [f"activation:{default_layer(model)}" if s == "activation" else s for s in cfg.latent_spaces]
    metric_rows, score_rows = [], []
    for space in spaces:
        began = time.perf_counter()
        subset_size = alpha = None
        if space == "model":
            fit_seconds = 0.0
            scores = model_scores(model)[job.detector](model, split.test, device)
        else:
            detector = _make_detector(job.detector, cfg).fit(features(model, split.fit, space, device))
            fit_seconds = time.perf_counter() - began
            began = time.perf_counter()
            test = features(model, split.test, space, device)
            if job.detector == "subset_scan":
                scan = detector.scan(test)
                scores, subset_size, alpha = scan.score, scan.size, scan.alpha
            else:
                scores = detector.score(test)
        score_seconds = time.perf_counter() - began
        values = anomaly_metrics(split.labels, scores, contamination=cfg.contamination)
        metric_rows += [{
            "trial_id": job.trial_id, "detector": job.detector, "feature_space": space,
            "benchmark": job.benchmark, "metric": name, "value": float(value),
            "n_normal": split.n_normal, "n_anomalous": split.n_anomalous, "seed": seed,
            "fit_seconds": fit_seconds, "score_seconds": score_seconds,
        } for name, value in values.items()]
        score_rows += [{
            "trial_id": job.trial_id, "detector": job.detector, "feature_space": space,
            "benchmark": job.benchmark, "sample": i, "label": int(split.labels[i]), "score": float(scores[i]),
            "subset_size": None if subset_size is None else int(subset_size[i]),
            "alpha": None if alpha is None else float(alpha[i]), "seed": seed,
        } for i in range(len(scores))]
    append_table(pa.Table.from_pylist(score_rows, schema=schema.ANOMALY_SCORES), join(job.run_uri, SCORES_TABLE),
                 key=job.key)
    append_table(pa.Table.from_pylist(metric_rows, schema=schema.ANOMALY_METRICS), join(job.run_uri, METRICS_TABLE),
                 key=job.key)
    return len(metric_rows)


def run_setup(run_uri: str) -> tuple[str, int, tuple[Region, ...], AnomalyConfig]:
    """``(dataset, resolution, excluded regions, anomaly config)`` from ``experiment.json``."""
    where = join(run_uri, "experiment.json")
    try:
        stored = json.loads(read_bytes(where))["experiment"]
        regions = tuple(Region(dict(r["bounds"])) for r in stored["data"].get("exclude") or ())
        return (stored["data"]["dataset"], int(stored["data"]["resolution"]), regions,
                anomaly_from_dict(stored.get("anomaly") or {}))
    except UserError:
        raise
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{where}: not a readable experiment description") from None


def front_trial_ids(run_uri: str) -> set[str]:
    """Trial ids on the run's Pareto front (from ``pareto.parquet``)."""
    pareto = read_table(join(run_uri, "pareto.parquet"))
    return {r["trial_id"] for r in pareto.to_pylist() if r["on_front"]}


def plan(run_uri: str, detectors: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None,
         trial_ids: set[str] | None = None, setup: tuple | None = None) -> tuple[list[Job], int, int]:
    """Jobs still to do, how many are done already, and how many do not apply to their model
    (only for ``trial_ids`` when given; ``setup`` is :func:`run_setup`'s answer if already read)."""
    from disentune.anomaly.benchmarks import benchmark_names

    dataset, resolution, regions, cfg = setup or run_setup(run_uri)
    detectors = tuple(detectors or cfg.detectors)
    benchmarks = tuple(benchmarks or cfg.benchmarks or benchmark_names(regions))
    done_table = read_dataset(join(run_uri, METRICS_TABLE), schema.ANOMALY_METRICS)
    done = set(zip(done_table["trial_id"].to_pylist(), done_table["detector"].to_pylist(),
                   done_table["benchmark"].to_pylist()))
    jobs, skipped, not_applicable = [], 0, 0
    for t in trained_trials(run_uri):
        if trial_ids is not None and t["trial_id"] not in trial_ids:
            continue
        for detector in detectors:
            if not applies(detector, t["variant"]):
                not_applicable += len(benchmarks)
                continue
            for benchmark in benchmarks:
                if (t["trial_id"], detector, benchmark) in done:
                    skipped += 1
                    continue
                jobs.append(Job(run_uri, t["trial_id"], t["trial_number"], t["checkpoint_uri"], t["variant"],
                                int(t["seed"] or 0), detector, benchmark, dataset, resolution, regions, cfg))
    return jobs, skipped, not_applicable


def check_request(detectors: Sequence[str] | None, benchmarks: Sequence[str] | None) -> None:
    """Refuse unknown detector or benchmark names (one line) before any work starts."""
    from disentune.anomaly.benchmarks import check_benchmark
    from disentune.config import DETECTOR_NAMES

    for name in detectors or ():
        if name not in DETECTOR_NAMES:
            raise UserError(f"--detectors: unknown detector {name!r}; choose from {', '.join(DETECTOR_NAMES)}")
    for name in benchmarks or ():
        check_benchmark(name)


def detect_run(run_uri: str, *, detectors: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None,
               front_only: bool = False, address: str = "local", num_cpus: int | None = None) -> AnomalyResult:
    """Run every missing (trial, detector, benchmark) of a finished run as parallel Ray tasks
    (of the Pareto front's trials only, with ``front_only``)."""
    began = time.perf_counter()
    trial_ids = front_trial_ids(run_uri) if front_only else None
    setup = run_setup(run_uri)
    jobs, skipped, not_applicable = plan(run_uri, detectors, benchmarks, trial_ids, setup)
    cfg = setup[3]
    done, failed = run_tasks(run_job, jobs, num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task,
                             use_gpu=cfg.use_gpu, address=address, local_cpus=num_cpus,
                             describe=lambda j: f"anomaly #{j.trial_number} {j.detector} on {j.benchmark}")
    return AnomalyResult(run_uri, done, skipped, not_applicable, failed, time.perf_counter() - began)
