"""What a registered metric declares: its inputs (``kind``), its sample size and its value keys.

Every metric module keeps a pure array-level core and a thin ``compute_x`` wrapper that returns a
flat dict. :func:`metric` registers the wrapper with the facts the evaluator needs to feed it,
without a list of names anywhere else:

- ``kind="representation"``: ``compute(representation (n, d), factors (n, K) int classes, *, rng,
  **params)``; the evaluator draws ``points(params)`` images with uniformly sampled factors.
- ``kind="intervention"``: ``compute(represent, factor_sizes (K,), *, rng, **params)`` where
  ``represent(classes (n, K)) -> (n, d)`` encodes the images at those factor classes (the BetaVAE
  and FactorVAE scores fix one factor per batch, so they sample the data themselves).
- ``kind="quality"``: ``compute(real_features (n, f), generated_features (m, f), *, rng,
  **params)``; ``points(params)`` real and as many generated images go through the extractor.
- ``kind="control"``: ``compute(decode, code_ranges (c, 2), predict_factors, *, rng, **params)``
  where ``decode(codes (n, c)) -> images`` renders codes and ``predict_factors(images) -> (n, K)``
  reads each image's factor values with the dataset-factor network.
- ``kind="unsupervised"``: ``compute(representation (n, d), *, rng, **params)``; the evaluator
  draws ``points(params)`` images by uniformly random flat index (``rng.integers(0,
  data.num_images, n)``, ``data.images_at``) and never reads factors, so these metrics also run on
  image collections without factors (disentanglement_lib's ``unsupervised_metrics``).
- ``kind="cross_model"``: ``compute(models_means, models_logvars, *, rng, **params)`` compares
  several models of one dataset (a trial's replicates, or the trials of a run): ``models_means``
  is a list with one ``(n, d_m)`` array per model, the posterior means of the SAME ``n =
  points(params)`` images (drawn as for ``"unsupervised"``), and ``models_logvars`` the matching
  posterior log-variances (``None``, or ``None`` for a model without a Gaussian posterior). Each
  name in ``values`` maps to a list with one float per model, in the order given (UDR, Duan et al.
  2020). :func:`disentune.metrics.suite.run_cross_model` feeds it from several trained models.

The dict a wrapper returns holds the scalar results named in ``values`` (one row each in
``evaluations.parquet``; for ``"cross_model"`` one row per model) and everything else that
describes them (sample sizes, bins, seeds, per-factor details), which is stored as the row's
``params``. Only the kinds in :data:`NEEDS_FACTORS` read ground-truth factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import numpy as np

from disentune.registry import METRICS

Kind = Literal["representation", "intervention", "quality", "control", "unsupervised", "cross_model"]
NEEDS_FACTORS: frozenset[str] = frozenset({"representation", "intervention", "control"})
Represent = Callable[[np.ndarray], np.ndarray]  # an intervention metric's input (see above)
REPRESENT_CHUNK = 16_384  # rows per represent call: bounds the images rendered at once


def represent_in_chunks(represent: Represent, classes: np.ndarray, chunk: int = REPRESENT_CHUNK) -> np.ndarray:
    """``represent`` of factor classes ``(..., K)`` -> representations ``(..., d)``, ``chunk`` rows a call."""
    flat = classes.reshape(-1, classes.shape[-1])
    out = np.concatenate([np.asarray(represent(flat[i : i + chunk]), dtype=np.float64)
                          for i in range(0, len(flat), chunk)])
    return out.reshape(*classes.shape[:-1], out.shape[-1])


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    compute: Callable[..., dict]
    values: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    points: Callable[[Mapping[str, Any]], int] | None = None

    @property
    def needs_factors(self) -> bool:
        """Whether the metric reads ground-truth factors (refused on image collections)."""
        return self.kind in NEEDS_FACTORS

    def sample_size(self, params: Mapping[str, Any] | None = None) -> int:
        """Images the evaluator draws for this metric (0 for metrics that sample themselves)."""
        if self.points is None:
            return 0
        return int(self.points({**self.defaults, **(params or {})}))


def metric(
    name: str,
    *,
    kind: Kind,
    values: tuple[str, ...],
    defaults: Mapping[str, Any] | None = None,
    points: Callable[[Mapping[str, Any]], int] | None = None,
) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Register ``compute`` under ``name``; returns it unchanged so it stays a plain function."""

    def add(compute: Callable[..., dict]) -> Callable[..., dict]:
        METRICS.register(name)(Metric(name, kind, compute, values, dict(defaults or {}), points))
        return compute

    return add
