"""Feed one registered metric from one trained model: the bridge from a model to array cores.

A metric declares its ``kind`` (see :mod:`disentune.metrics.base`); this module turns a model, its
dataset and the feature networks into exactly those inputs, runs the metric and returns its values
with everything needed to reproduce them (the merged parameters, the seed, the extractor, the
library versions). No Ray here: :mod:`disentune.evaluate` runs it as a task per (trial, metric).
:func:`run_cross_model` feeds a ``"cross_model"`` metric (UDR) from several models of one dataset.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import sklearn
import torch
from torch import nn

from disentune.data.ground_truth import GroundTruthData, ImageData
from disentune.metrics.base import REPRESENT_CHUNK, Metric
from disentune.metrics.factor_net import Extractor
from disentune.metrics.model_io import code_ranges, decode_codes, encode_images, sample_images


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
    or Inception-v3); ``factor_net`` predicts factors for attribute control. ``data`` may be an
    image collection without factors (:class:`ImageData`) for the kinds that read none
    (``"unsupervised"``, ``"cross_model"``).
    """

    model: nn.Module
    data: GroundTruthData | ImageData
    quality_extractor: Extractor
    factor_net: Extractor
    device: torch.device

    def representation(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` images with uniformly drawn factors (a nuisance variable, SmallNORB's instance,
        drawn from ``rng`` too, as disentanglement_lib does): their representations and classes."""
        classes = self.data.sample_factors(n, rng)
        return encode_images(self.model, self.data.images(classes, rng), self.device), classes

    def represent(self, classes: np.ndarray) -> np.ndarray:
        return encode_images(self.model, self.data.images(classes), self.device)

    def quality_features(self, n: int, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Features of ``n`` real images (uniform factors, or uniform over a collection) and of
        ``n`` samples of the model."""
        if self.data.has_factors:
            real_images = self.data.images(self.data.sample_factors(n, rng), rng)
        else:
            real_images = self.data.images_at(draw_image_index(self.data, n, rng))
        real = self.quality_extractor(real_images)
        fake = self.quality_extractor(sample_images(self.model, n, seed, self.device))
        return real, fake

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return decode_codes(self.model, codes, self.device)

    def image_representation(self, index: np.ndarray) -> np.ndarray:
        """Mean representation ``(n, d)`` of the images at flat indices ``(n,)`` (no factors read)."""
        return np.concatenate([encode_images(self.model, self.data.images_at(index[i : i + REPRESENT_CHUNK]),
                                             self.device) for i in range(0, len(index), REPRESENT_CHUNK)])

    def image_posterior(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Posterior means and log-variances ``(n, d)`` of the images at flat indices ``(n,)``;
        the log-variances are None for a model without a Gaussian posterior (no ``posterior``)."""
        posterior = getattr(self.model, "posterior", None)
        if posterior is None:
            return self.image_representation(index), None
        self.model.eval()
        means, logvars = [], []
        with torch.no_grad():
            for i in range(0, len(index), 1000):
                images = torch.from_numpy(self.data.images_at(index[i : i + 1000])).to(self.device)
                mu, logvar = posterior(images)
                means.append(mu.float().cpu().numpy())
                logvars.append(logvar.float().cpu().numpy())
        return np.concatenate(means), np.concatenate(logvars)


def draw_image_index(data: ImageData, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` flat image indices drawn uniformly with replacement: ``rng.integers(0, num_images, n)``."""
    return rng.integers(0, data.num_images, n)


def _described(metric: Metric, merged: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    return {**merged, **{k: v for k, v in result.items() if k not in metric.values},
            "sklearn_version": sklearn.__version__, "numpy_version": np.__version__}


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
    elif metric.kind == "unsupervised":
        rep = inputs.image_representation(draw_image_index(inputs.data, metric.sample_size(merged), rng))
        result = metric.compute(rep, rng=rng, **merged)
    elif metric.kind == "control":
        from disentune.metrics.attribute_control import factor_predictor

        predict = factor_predictor(inputs.factor_net.net, [f.values for f in inputs.data.factors])
        result = metric.compute(inputs.decode, code_ranges(inputs.model), predict, rng=rng, **merged)
    else:  # "cross_model" compares several models: run_cross_model
        raise ValueError(f"metric {metric.name}: kind {metric.kind!r} is not computed from one model"
                         + ("; use run_cross_model" if metric.kind == "cross_model" else ""))
    seconds = time.perf_counter() - began
    described = _described(metric, merged, result)
    if metric.kind == "control":
        described["factor_net"] = inputs.factor_net.name
    values = [MetricValue(name, float(result[name]), described) for name in metric.values]
    return values, seconds


def run_cross_model(metric: Metric, inputs: Sequence[ModelInputs], *, seed: int,
                    params: Mapping[str, Any] | None = None) -> tuple[list[list[MetricValue]], float]:
    """Compute a ``"cross_model"`` metric over several models of one dataset.

    Every model encodes the SAME ``metric.sample_size(params)`` images, drawn uniformly by flat
    index from ``inputs[0].data`` with ``seed``; the metric gets each model's posterior means and
    log-variances. Returns, per model in the order given, its values (the shared description in
    their params), and the seconds it took.
    """
    if metric.kind != "cross_model":
        raise ValueError(f"metric {metric.name} has kind {metric.kind!r}, not 'cross_model'")
    if len(inputs) < 2:
        raise ValueError(f"metric {metric.name} compares models: it needs at least 2, got {len(inputs)}")
    data = inputs[0].data
    if any(i.data.num_images != data.num_images or i.data.image_shape != data.image_shape for i in inputs):
        raise ValueError(f"metric {metric.name} compares models of one dataset; these models' data differ")
    merged = {**metric.defaults, **(params or {})}
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    index = draw_image_index(data, metric.sample_size(merged), rng)
    posteriors = [model.image_posterior(index) for model in inputs]
    result = metric.compute([p[0] for p in posteriors], [p[1] for p in posteriors], rng=rng, **merged)
    seconds = time.perf_counter() - began
    described = _described(metric, merged, result)
    per_model = [[MetricValue(name, float(result[name][m]), described) for name in metric.values]
                 for m in range(len(inputs))]
    return per_model, seconds
