"""Feed one registered metric from one trained model: the bridge from a model to array cores.

A metric declares its ``kind`` (see :mod:`disentune.metrics.base`); this module turns a model, its
dataset and the feature networks into exactly those inputs, runs the metric and returns its values
with everything needed to reproduce them (the merged parameters, the seed, the extractor, the
library versions). No Ray here: :mod:`disentune.evaluate` runs it as a task per (trial, metric).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import sklearn
import torch
from torch import nn

from disentune.data.ground_truth import GroundTruthData
from disentune.metrics.base import Metric
from disentune.metrics.factor_net import Extractor
from disentune.metrics.objectives import code_ranges, decode_codes, encode_images, sample_images


@dataclass(frozen=True)
class MetricValue:
    """One scalar result of a metric, with the parameters and details that describe it."""

    metric: str
    value: float
    params: dict[str, Any]


def metric_seed(seed: int, name: str) -> int:
    """The seed of one metric of one trial: stable across runs, distinct between metrics."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0] >> 1)


@dataclass
class ModelInputs:
    """A trained model, its dataset, and the feature networks the metrics read it with.

    ``quality_extractor`` embeds images for FID/KID/precision-recall (the dataset-factor network
    or Inception-v3); ``factor_net`` predicts factors for attribute control.
    """

    model: nn.Module
    data: GroundTruthData
    quality_extractor: Extractor
    factor_net: Extractor
    device: torch.device

    def representation(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        classes = self.data.sample_factors(n, rng)
        return encode_images(self.model, self.data.images(classes), self.device), classes

    def represent(self, classes: np.ndarray) -> np.ndarray:
        return encode_images(self.model, self.data.images(classes), self.device)

    def quality_features(self, n: int, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray]:
        real = self.quality_extractor(self.data.images(self.data.sample_factors(n, rng)))
        fake = self.quality_extractor(sample_images(self.model, n, seed, self.device))
        return real, fake

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return decode_codes(self.model, codes, self.device)


def run_metric(metric: Metric, inputs: ModelInputs, *, seed: int,
               params: Mapping[str, Any] | None = None) -> tuple[list[MetricValue], float]:
    """Compute ``metric`` on ``inputs``; returns its values and the seconds it took."""
    merged = {**metric.defaults, **(params or {})}
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    if metric.kind == "representation":
        rep, classes = inputs.representation(metric.sample_size(merged), rng)
        result = metric.compute(rep, classes, rng=rng, **merged)
    elif metric.kind == "intervention":
        result = metric.compute(inputs.represent, inputs.data.factor_sizes, rng=rng, **merged)
    elif metric.kind == "quality":
        real, fake = inputs.quality_features(metric.sample_size(merged), rng, seed)
        result = metric.compute(real, fake, rng=rng, extractor=inputs.quality_extractor.name, **merged)
    elif metric.kind == "control":
        from disentune.metrics.attribute_control import factor_predictor

        predict = factor_predictor(inputs.factor_net.net, [f.values for f in inputs.data.factors])
        result = metric.compute(inputs.decode, code_ranges(inputs.model), predict, rng=rng, **merged)
    else:  # pragma: no cover - Metric.kind is a closed Literal
        raise ValueError(f"metric {metric.name}: unknown kind {metric.kind!r}")
    seconds = time.perf_counter() - began
    described = {**merged, **{k: v for k, v in result.items() if k not in metric.values},
                 "sklearn_version": sklearn.__version__, "numpy_version": np.__version__}
    if metric.kind == "control":
        described["factor_net"] = inputs.factor_net.name
    values = [MetricValue(name, float(result[name]), described) for name in metric.values]
    return values, seconds
