"""The search objectives of a trained model: what Optuna, the scheduler and the Pareto front see.

An objective (``search.objectives``) is one of

- a value that a registered metric gives per model: ``fid``, ``mig``, ``dci_disentanglement``,
  ``sap``, ``factor_vae_score``, ``attribute_control``, ``kid``, ... (the metric runs through
  :func:`disentune.metrics.suite.run_metric`, as in the metric suite);
- ``udr`` (or another value of a ``cross_model`` metric): computed across a trial's replicates
  once all of them have trained, not here (see :mod:`disentune.search.replicates`);
- ``auroc:<detector>:<benchmark>``: the AUROC of an anomaly detector on a benchmark, in the
  detector's first feature space (see :func:`disentune.anomaly.runner.score_benchmark`).

Sample sizes: ``fid`` uses ``evaluation.fid_samples`` real and generated images; ``mig``
``evaluation.mig_samples`` points and ``mig_bins`` bins; every other metric its reference
defaults overridden by ``evaluation.metric_params``. Each objective's randomness comes from the
trial's seed and the objective's name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from disentune.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from disentune.config import Experiment, Objective
    from disentune.metrics.factor_net import Extractor

ANOMALY_PREFIX = "auroc:"


@dataclass(frozen=True)
class ObjectiveSource:
    """Where an objective's value comes from (see the module docstring)."""

    kind: Literal["metric", "cross_model", "anomaly"]
    metric: str | None = None  # the registered metric, for kinds metric and cross_model
    detector: str | None = None
    benchmark: str | None = None


def objective_source(name: str, where: str = "objective") -> ObjectiveSource:
    """Resolve an objective's name; one ``ConfigError`` line for a name that is none."""
    from disentune.registry import METRICS

    if name.startswith(ANOMALY_PREFIX):
        from disentune.registry import DETECTORS, benchmark_family

        detector, _, benchmark = name[len(ANOMALY_PREFIX):].partition(":")
        if detector not in DETECTORS or not benchmark:
            raise ConfigError(f"{where}: {name!r} is not an anomaly objective; expected auroc:<detector>:<benchmark> "
                              f"with a detector from {', '.join(DETECTORS.names())}")
        try:
            benchmark_family(benchmark)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        return ObjectiveSource("anomaly", detector=detector, benchmark=benchmark)
    for metric_name in METRICS.names():
        metric = METRICS.get(metric_name)
        if name in metric.values:
            return ObjectiveSource("cross_model" if metric.kind == "cross_model" else "metric", metric=metric_name)
    values = sorted(v for m in METRICS.names() for v in METRICS.get(m).values)
    raise ConfigError(f"{where}: {name!r} is not an objective; choose a metric value ({', '.join(values)}) or "
                      "auroc:<detector>:<benchmark>")


def objective_params(exp: Experiment, metric: str) -> dict[str, Any]:
    """A metric's parameters when it computes an objective (see the module docstring)."""
    ev = exp.evaluation
    params = dict(ev.metric_params.get(metric, {}))
    if metric == "fid":
        params["num_points"] = ev.fid_samples
    elif metric == "mig":
        params.update(num_points=ev.mig_samples, num_bins=ev.mig_bins)
    return params


def needs_factors(source: ObjectiveSource) -> bool:
    """Whether an objective reads ground-truth factors (refused on image collections)."""
    from disentune.registry import METRICS

    if source.kind == "anomaly":
        from disentune.registry import benchmark_family

        return benchmark_family(source.benchmark)[0].needs_factors
    return METRICS.get(source.metric).needs_factors


def objective_seed(seed: int, name: str) -> int:
    from disentune.metrics.suite import metric_seed

    return metric_seed(seed, f"objective:{name}")


def compute_objectives(model: nn.Module, data: Any, exp: Experiment, *, seed: int, device: torch.device,
                       quality: Extractor | None, factor_net: Extractor | None,
                       regions: tuple = ()) -> dict[str, float | str]:
    """The per-model objectives of ``exp`` (every kind but ``cross_model``), and the name of the
    quality extractor (``fid_extractor``) when a quality metric was computed."""
    from disentune.metrics.suite import ModelInputs, run_metric
    from disentune.registry import METRICS

    out: dict[str, float | str] = {}
    by_metric: dict[str, dict[str, float]] = {}
    inputs = ModelInputs(model, data, quality, factor_net, device)
    for objective in exp.search.objectives:
        source = objective_source(objective.name)
        if source.kind == "cross_model":
            continue
        if source.kind == "anomaly":
            out[objective.name] = _anomaly_auroc(model, data, exp, source, objective, seed=seed, device=device,
                                                 regions=regions)
            continue
        if source.metric not in by_metric:
            metric = METRICS.get(source.metric)
            values, _ = run_metric(metric, inputs, seed=objective_seed(seed, source.metric),
                                   params=objective_params(exp, source.metric))
            by_metric[source.metric] = {v.metric: v.value for v in values}
            if metric.kind == "quality" and quality is not None:
                out["fid_extractor"] = quality.name
        out[objective.name] = float(by_metric[source.metric][objective.name])
    return out


def _anomaly_auroc(model: nn.Module, data: Any, exp: Experiment, source: ObjectiveSource, objective: Objective,
                   *, seed: int, device: torch.device, regions: tuple) -> float:
    from disentune.anomaly.runner import score_benchmark, split_seed

    results = score_benchmark(model, data, regions, source.detector, source.benchmark, exp.anomaly,
                              seed=split_seed(seed, source.benchmark), device=device)
    return float(results[0].metrics["auroc"])


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def cross_model_objectives(exp: Experiment, checkpoint_uris: list[str]) -> dict[str, list[float]]:
    """The objectives that compare models (``udr``) across the replicates at ``checkpoint_uris``:
    one value per replicate, in the order given; every replicate encodes the same images, drawn
    from the experiment's seed."""
    import torch

    from disentune.checkpoints import load_model_uri
    from disentune.data.open import open_dataset
    from disentune.metrics.suite import ModelInputs, run_cross_model
    from disentune.registry import METRICS

    device = torch.device("cpu")
    data = open_dataset(exp.data)
    inputs = [ModelInputs(load_model_uri(uri, device)[0], data, None, None, device) for uri in checkpoint_uris]
    out: dict[str, list[float]] = {}
    for objective in exp.search.objectives:
        source = objective_source(objective.name)
        if source.kind != "cross_model":
            continue
        per_model, _ = run_cross_model(METRICS.get(source.metric), inputs, seed=objective_seed(exp.seed, source.metric),
                                       params=dict(exp.evaluation.metric_params.get(source.metric, {})))
        out[objective.name] = [next(v.value for v in values if v.metric == objective.name) for values in per_model]
    return out
