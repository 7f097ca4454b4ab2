"""Mutual Information Gap (Chen et al. 2018), as defined in disentanglement_lib.

    MIG = mean_k (I(z_a; v_k) - I(z_b; v_k)) / H(v_k)

where ``a`` and ``b`` are the two latent dimensions most informative about factor ``v_k``. The
(mean) representation is discretised into 20 equal-width bins per dimension over its own range;
the reference study uses 10,000 points. A factor carried by a single dimension scores 1, one
spread over two identical dimensions scores 0.
"""

from __future__ import annotations

import numpy as np

from disentune.metrics.information import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
)
from disentune.metrics.base import metric


def mig_core(representation: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per-factor normalised gaps ``(K,)`` of a representation ``(n, d)`` against factors ``(n, K)``."""
    if representation.shape[1] < 2:
        raise ValueError("MIG needs a representation with at least 2 dimensions")
    mi = discrete_mutual_info(histogram_discretize(representation, num_bins), factors)  # (d, K)
    entropy = discrete_entropy(factors)
    top = np.sort(mi, axis=0)[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = (top[0] - top[1]) / entropy
    return np.where(entropy > 0, gaps, 0.0)


@metric(
    "mig",
    kind="representation",
    values=("mig",),
    defaults={"num_points": 10_000, "num_bins": 20},
    points=lambda p: p["num_points"],
)
def compute_mig(
    representation: np.ndarray,
    factors: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    num_bins: int = 20,
    num_points: int | None = None,
) -> dict:
    """MIG of ``representation (n, d)`` against ground-truth factor classes ``factors (n, K)``.

    Deterministic given its inputs (``rng`` is accepted for the common metric signature). Uses the
    first ``num_points`` rows (all when None).
    """
    if num_points is not None:
        representation, factors = representation[:num_points], factors[:num_points]
    gaps = mig_core(np.asarray(representation), np.asarray(factors), num_bins)
    return {
        "mig": float(gaps.mean()),
        "mig_per_factor": gaps.tolist(),
        "num_bins": num_bins,
        "num_points": int(len(representation)),
    }
