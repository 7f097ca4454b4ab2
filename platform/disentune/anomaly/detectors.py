"""Feature-space anomaly detectors: ``fit`` on normal features, ``score`` anything (higher = more anomalous).

Features are ``(n, f)`` arrays: latent means, pixels or a layer's activations. Each detector is a
small class with a keyword-only constructor (its config schema):

- :class:`Mahalanobis`: distance to the mean of the normal features under their Ledoit-Wolf
  shrunk covariance (Rippel, Mertens & Merhof 2020, "Modeling the Distribution of Normal Data in
  Pre-Trained Deep Features for Anomaly Detection", eq. 2; Ledoit & Wolf 2004).
- :class:`KNN`: Euclidean distance to the ``k`` nearest normal features, exact, computed in row
  batches so memory stays ``O(batch_size * n_fit)``.
- :class:`SubsetScan`: the per-sample subset-scanning score of the features' empirical p-values
  against the normal features as background (Cintas et al. 2020; see ``subset_scan``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.covariance import LedoitWolf

from disentune.anomaly.pvalues import (
    CONVENTIONS,
    Background,
    Convention,
    empirical_pvalues,
)
from disentune.anomaly.scan_statistics import STATISTICS, backend
from disentune.anomaly.subset_scan import SampleScan, scan_samples
from disentune.errors import ConfigError


@runtime_checkable
class Detector(Protocol):
    """``fit(normal (n, f)) -> self``; ``score(features (m, f)) -> (m,)``, higher = more anomalous."""

    def fit(self, normal_features: np.ndarray) -> Detector: ...

    def score(self, features: np.ndarray) -> np.ndarray: ...


def _features(x: np.ndarray, what: str, num_features: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{what} must be a non-empty (n, f) array; got shape {a.shape}")
    if num_features is not None and a.shape[1] != num_features:
        raise ValueError(f"{what} have {a.shape[1]} features; the detector was fitted on {num_features}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return a


def _fitted(value: object, name: str) -> None:
    if value is None:
        raise RuntimeError(f"{name}.score called before fit")


class Mahalanobis:
    """``sqrt((x - mu)^T Sigma^-1 (x - mu))`` with ``Sigma`` the Ledoit-Wolf covariance of the fit set.

    The distance itself (not its square), as ``scipy.spatial.distance.mahalanobis`` returns; any
    monotone transform gives the same ranking metrics.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.precision_: np.ndarray | None = None

    def fit(self, normal_features: np.ndarray) -> Mahalanobis:
        x = _features(normal_features, "normal features")
        estimate = LedoitWolf().fit(x)
        self.mean_ = estimate.location_
        self.precision_ = np.linalg.inv(estimate.covariance_)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        _fitted(self.mean_, "Mahalanobis")
        centred = _features(features, "features", len(self.mean_)) - self.mean_
        squared = np.einsum("ij,jk,ik->i", centred, self.precision_, centred)
        return np.sqrt(np.maximum(squared, 0.0))


class KNN:
    """Distance to the ``k`` nearest fit samples: their mean distance, or the ``k``-th distance.

    ``reduction="mean"`` (default) averages the ``k`` smallest Euclidean distances; ``"kth"`` takes
    the ``k``-th smallest. Exact (no index); nothing is excluded, since scored samples are not
    assumed to be in the fit set (a fit sample scored against itself has distance 0 to itself).
    """

    def __init__(self, *, k: int = 5, reduction: Literal["mean", "kth"] = "mean", batch_size: int = 1024) -> None:
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be an integer >= 1; got {k!r}")
        if reduction not in ("mean", "kth"):
            raise ConfigError(f"reduction must be 'mean' or 'kth'; got {reduction!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size!r}")
        self.k, self.reduction, self.batch_size = k, reduction, batch_size
        self.fit_: np.ndarray | None = None

    def fit(self, normal_features: np.ndarray) -> KNN:
        x = _features(normal_features, "normal features")
        if len(x) < self.k:
            raise ValueError(f"KNN with k={self.k} needs at least {self.k} normal samples; got {len(x)}")
        self.fit_ = x
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        _fitted(self.fit_, "KNN")
        x = _features(features, "features", self.fit_.shape[1])
        out = np.empty(len(x))
        for start in range(0, len(x), self.batch_size):
            dist = cdist(x[start : start + self.batch_size], self.fit_)  # (batch, n_fit)
            nearest = np.partition(dist, self.k - 1, axis=1)[:, : self.k]
            out[start : start + len(dist)] = nearest.mean(axis=1) if self.reduction == "mean" else nearest.max(axis=1)
        return out


class SubsetScan:
    """Per-sample subset-scanning score of features against the fit set as clean background.

    ``fit`` sorts the background once per feature (node); ``score`` computes empirical p-values
    (``tails``, ``convention``: see ``pvalues``) and returns each sample's scan score
    ``max_{S, alpha <= alpha_max} F(alpha, N_alpha(S), |S|)`` for the named ``statistic``.
    ``device`` None runs all of it in numpy; "cpu", "cuda", "cuda:1" (or "auto": CUDA when torch
    sees a GPU, else numpy) runs fitting, p-values and scan in torch there, in float64: the same
    p-values, the same scores up to rounding.
    """

    def __init__(
        self,
        *,
        statistic: str = "berk_jones",
        alpha_max: float = 0.5,
        tails: int = 1,
        convention: Convention = "point",
        device: str | None = None,
    ) -> None:
        if statistic not in STATISTICS:
            raise ConfigError(f"unknown scan statistic {statistic!r}; choose from {', '.join(sorted(STATISTICS))}")
        if not 0.0 < alpha_max < 1.0:
            raise ConfigError(f"alpha_max must lie in (0, 1); got {alpha_max!r}")
        if tails not in (1, 2):
            raise ConfigError(f"tails must be 1 or 2; got {tails!r}")
        if convention not in CONVENTIONS:
            raise ConfigError(f"unknown p-value convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
        backend(device)  # a bad or unavailable device fails here, naming it
        self.statistic, self.alpha_max, self.tails, self.convention = statistic, alpha_max, tails, convention
        self.device = device
        self.background_: Background | None = None

    def fit(self, normal_features: np.ndarray) -> SubsetScan:
        features = _features(normal_features, "normal features")
        self.background_ = Background.from_activations(features, device=self.device)
        return self

    def scan(self, features: np.ndarray) -> SampleScan:
        """The whole per-sample scan: score, maximising alpha, subset size and node mask."""
        _fitted(self.background_, "SubsetScan")
        x = _features(features, "features", self.background_.num_nodes)
        pvalues = empirical_pvalues(x, self.background_, tails=self.tails, convention=self.convention)
        return scan_samples(pvalues.pmin, pvalues.pmax, statistic=self.statistic, alpha_max=self.alpha_max)

    def score(self, features: np.ndarray) -> np.ndarray:
        return self.scan(features).score


FEATURE_DETECTORS: dict[str, Callable[..., Detector]] = {"mahalanobis": Mahalanobis, "knn": KNN, "subset_scan": SubsetScan}
