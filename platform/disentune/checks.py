"""What a sweep needs of its data, checked once the dataset is open and before Ray starts.

Every problem is one :class:`~disentune.errors.ConfigError` line that names the key, and nothing
at ``--out`` has been touched yet. On data without ground-truth factors (an image collection):

- the default objectives (fid, mig) become fid and ``udr``, which needs ``search.replicates >= 2``;
  an objective, suite metric or anomaly benchmark that reads factors, given explicitly, is refused;
- the default suite and benchmarks keep only what needs no factors;
- quality metrics need Inception-v3 weights (``evaluation.inception_weights``): the dataset-factor
  network cannot be trained without factors, and nothing is downloaded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from disentune.config import DEFAULT_OBJECTIVES, DEFAULT_SUITE, Experiment, Objective
from disentune.data.ground_truth import ImageData, training_indices
from disentune.errors import ConfigError

COLLECTION_OBJECTIVES = (Objective("fid", "min"), Objective("udr", "max"))
QUALITY = ("fid", "kid", "precision_recall")


def _where(data: ImageData, exp: Experiment) -> str:
    return f"{exp.data.dataset} {exp.data.path or ''}".strip()


def checked_experiment(exp: Experiment, data: ImageData) -> Experiment:
    """``exp`` as it will run on ``data`` (defaults fitted to data without factors), or a refusal."""
    from disentune.metrics.objectives import needs_factors, objective_source
    from disentune.registry import METRICS, benchmark_family

    for i, region in enumerate(exp.data.exclude):
        if not data.has_factors:
            raise ConfigError(f"data.exclude[{i}]: {_where(data, exp)} has no ground-truth factors to exclude")
        region.validate(data, f"data.exclude[{i}]")
    if data.has_factors:
        return exp
    why = f"needs ground-truth factors, which {_where(data, exp)} (images without factors) has none of"
    search, evaluation, anomaly = exp.search, exp.evaluation, exp.anomaly
    if search.objectives == DEFAULT_OBJECTIVES:
        if search.replicates < 2:
            raise ConfigError("search.objectives: on images without factors the default objectives are fid and "
                              "udr, and udr compares a trial's replicates; set search.replicates >= 2 or choose "
                              "search.objectives")
        search = dataclasses.replace(search, objectives=COLLECTION_OBJECTIVES)
    for i, o in enumerate(search.objectives):
        if needs_factors(objective_source(o.name)):
            raise ConfigError(f"search.objectives[{i}]: {o.name} {why}")
    if evaluation.suite == DEFAULT_SUITE:
        kept = tuple(m for m in METRICS.names() if not METRICS.get(m).needs_factors)
        evaluation = dataclasses.replace(evaluation, suite=tuple(m for m in kept if m in (*DEFAULT_SUITE, "unsupervised")))
    for i, name in enumerate(evaluation.suite):
        if METRICS.get(name).needs_factors:
            raise ConfigError(f"evaluation.suite[{i}]: {name} {why}")
    for i, name in enumerate(anomaly.benchmarks):
        if benchmark_family(name)[0].needs_factors:
            raise ConfigError(f"anomaly.benchmarks[{i}]: {name} {why}")
    quality = [m for m in (*(o.name for o in search.objectives), *evaluation.suite) if m in QUALITY]
    if quality and not evaluation.inception_weights:
        raise ConfigError(f"evaluation.inception_weights: {quality[0]} on images without factors needs "
                          "Inception-v3 weights (a local path or s3:// URI; nothing is downloaded), since the "
                          "dataset-factor network needs factors")
    return dataclasses.replace(exp, search=search, evaluation=evaluation, anomaly=anomaly)


def check_training_data(exp: Experiment, data: ImageData) -> int:
    """Refuse a data section that leaves no training images (``data.exclude`` covering the grid)
    or fewer than one batch of the largest ``batch_size`` searched; returns a trial's full budget
    in images seen (the least over the batch sizes searched: epochs x whole batches a epoch)."""
    available = training_indices(data, exp.data.exclude, exp.data.train_size, np.random.default_rng(0)).size
    spec = exp.param("batch_size")
    sizes = range(spec.values[0], spec.values[1] + 1) if spec.kind == "int" else spec.values
    if available < max(sizes):
        raise ConfigError(f"data: {available} training images (after data.exclude and data.train_size) "
                          f"are fewer than one batch of {max(sizes)}")
    return min(exp.train.epochs * (available // b) * b for b in sizes)
