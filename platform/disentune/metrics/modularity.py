"""Modularity (Ridgeway & Zemel 2018, Sec. 3), as defined in disentanglement_lib.

For code ``i`` with mutual information ``m_ik = I(z_i; v_k)`` and ``theta_i = max_k m_ik``::

    delta_i = sum_{k != argmax} m_ik^2 / (theta_i^2 (K - 1)),    modularity = mean_i (1 - delta_i)

a code that carries no information (``theta_i = 0``) scores 0. MI is estimated as for MIG: the
representation discretised into 20 equal-width bins per dimension, 10,000 points in the reference
study. A code informative about one factor only scores 1 whatever other codes do, so duplicated
codes keep a modular representation's score; a code that mixes factors lowers it.
"""

from __future__ import annotations

import numpy as np
import sklearn

from disentune.metrics.base import metric
from disentune.metrics.information import discrete_mutual_info, histogram_discretize


def modularity_per_code(mutual_info: np.ndarray) -> np.ndarray:
    """``1 - delta_i`` per code of a mutual information matrix ``(d, K)``, 0 for uninformative codes."""
    mutual_info = np.asarray(mutual_info, dtype=np.float64)
    if mutual_info.ndim != 2 or mutual_info.shape[1] < 2:
        raise ValueError(
            f"modularity needs a (codes, factors) matrix with at least 2 factors, got {mutual_info.shape}")
    squared = mutual_info**2
    top = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - top) / (top * (squared.shape[1] - 1))
    return np.where(top > 0, 1.0 - delta, 0.0)


def modularity(mutual_info: np.ndarray) -> float:
    """Modularity of a mutual information matrix ``(d, K)``.

    >>> modularity(np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))  # (1 + 1 + 0) / 3
    0.6666666666666666
    >>> modularity(np.array([[1.0, 1.0, 0.0]]))  # 1 - 1 / (1 * 2)
    0.5
    """
    return float(np.mean(modularity_per_code(mutual_info)))


@metric(
    "modularity",
    kind="representation",
    values=("modularity",),
    defaults={"num_points": 10_000, "num_bins": 20},
    points=lambda p: p["num_points"],
)
def compute_modularity(
    representation: np.ndarray,
    factors: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    num_points: int | None = None,
    num_bins: int = 20,
) -> dict:
    """Modularity of ``representation (n, d)`` against factor classes ``factors (n, K)``.

    Uses the first ``num_points`` rows (all when None). Deterministic given its inputs (``rng`` is
    accepted for the common metric signature).
    """
    if num_points is not None:
        representation, factors = representation[:num_points], factors[:num_points]
    mutual_info = discrete_mutual_info(histogram_discretize(np.asarray(representation), num_bins),
                                        np.asarray(factors))
    per_code = modularity_per_code(mutual_info)
    return {
        "modularity": float(per_code.mean()),
        "modularity_per_code": per_code.tolist(),
        "mutual_info": mutual_info.tolist(),
        "num_bins": int(num_bins),
        "num_points": int(len(representation)),
        "sklearn_version": sklearn.__version__,
    }
