"""Interventional Robustness Score, IRS (Suter et al. 2019, "Robustly Disentangled Causal
Mechanisms: Validating Deep Representations for Interventional Robustness", Sec. 4 and Alg. 1),
as disentanglement_lib computes it (``disentanglement_lib/evaluation/metrics/irs.py``).

From ``num_train`` mean representations ``z (n, d)`` of images with uniformly drawn factor classes
(10,000 in the reference, ``config/sample/irs/irs.gin``), the factor classes discretised into 20
equal-width bins each (``histogram_discretizer``, as the reference does to ``ys``; a factor with
more than 20 classes has neighbouring classes merged), and the constant codes (variance 0) dropped
(lines 79-87)::

    EMPIDA[l, k] = mean over values g of factor k of  q-quantile_{x: g_k = g} |z_l(x) - E[z_l | g_k = g]|
    IRS[l, k]    = 1 - EMPIDA[l, k] / max_x |z_l(x) - E z_l|
    IRS          = sum_l w_l max_k IRS[l, k] / sum_l w_l,     w_l = max_x |z_l(x) - E z_l|

with ``q = diff_quantile = 0.99`` (1.0 is the paper's maximum; ``np.percentile``'s linear
interpolation) (``scalable_disentanglement_score``, lines 90-144). A code that varies only with
one factor stays put when that factor is fixed: IRS near 1. A representation with no
non-constant code scores 0 (lines 67-68).
"""

from __future__ import annotations

import numpy as np

from disentune.metrics.base import metric
from disentune.metrics.information import histogram_discretize


def irs_matrix(factors: np.ndarray, latents: np.ndarray, diff_quantile: float = 0.99
               ) -> tuple[np.ndarray, np.ndarray]:
    """``IRS[l, k]`` ``(d, K)`` and the normalisers ``max_deviations (d,)`` of non-constant latents
    ``(n, d)`` against discrete factors ``(n, K)``."""
    latents = np.asarray(latents, dtype=np.float64)
    max_deviations = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    empida = np.zeros((latents.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values = np.unique(factors[:, k])
        for value in values:
            group = latents[factors[:, k] == value]
            empida[:, k] += np.percentile(np.abs(group - group.mean(axis=0)), diff_quantile * 100, axis=0)
        empida[:, k] /= len(values)
    return 1.0 - empida / max_deviations[:, None], max_deviations


def irs_score(factors: np.ndarray, latents: np.ndarray, diff_quantile: float = 0.99) -> dict:
    """IRS of latents ``(n, d)`` against discrete factors ``(n, K)``; constant latents are dropped.

    Returns ``irs``, ``active (d,)`` (the non-constant latents), and over the active ones
    ``irs_matrix (d_active, K)``, ``per_code (d_active,)`` (``max_k``), ``parents (d_active,)``
    (``argmax_k``) and ``max_deviations (d_active,)``.

    >>> f = np.repeat(np.arange(4), 5)[:, None]
    >>> irs_score(f, np.stack([f[:, 0], np.zeros(20)], axis=1))["irs"]  # a copy of the factor
    1.0
    """
    latents = np.asarray(latents, dtype=np.float64)
    active = latents.var(axis=0) > 0.0
    if not active.any():
        empty = np.zeros(0)
        return {"irs": 0.0, "active": active, "irs_matrix": np.zeros((0, factors.shape[1])),
                "per_code": empty, "parents": empty.astype(np.int64), "max_deviations": empty}
    matrix, max_deviations = irs_matrix(factors, latents[:, active], diff_quantile)
    per_code = matrix.max(axis=1)
    return {"irs": float(np.average(per_code, weights=max_deviations)), "active": active,
            "irs_matrix": matrix, "per_code": per_code, "parents": matrix.argmax(axis=1),
            "max_deviations": max_deviations}


@metric(
    "irs",
    kind="representation",
    values=("irs",),
    defaults={"num_train": 10_000, "batch_size": 16, "diff_quantile": 0.99, "num_bins": 20},
    points=lambda p: p["num_train"],
)
def compute_irs(
    representation: np.ndarray,
    factors: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    num_train: int | None = None,
    batch_size: int = 16,
    diff_quantile: float = 0.99,
    num_bins: int = 20,
) -> dict:
    """IRS of ``representation (n, d)`` against factor classes ``factors (n, K)``.

    Uses the first ``num_train`` rows (all when None); ``batch_size`` is the reference's sampling
    batch, recorded only. Deterministic given its inputs (``rng`` is accepted for the common
    metric signature).
    """
    if not 0.0 <= diff_quantile <= 1.0:
        raise ValueError(f"IRS diff_quantile must lie in [0, 1], got {diff_quantile}")
    representation = np.asarray(representation, dtype=np.float64)[:num_train]
    factors = np.asarray(factors)[:num_train]
    if representation.ndim != 2 or factors.ndim != 2 or len(representation) != len(factors):
        raise ValueError(f"IRS needs (n, d) representations and (n, K) factors, got "
                         f"{representation.shape} and {factors.shape}")
    result = irs_score(histogram_discretize(factors, num_bins), representation, diff_quantile)
    return {
        "irs": result["irs"],
        "irs_per_code": result["per_code"].tolist(),
        "irs_parents": result["parents"].tolist(),
        "irs_matrix": result["irs_matrix"].tolist(),
        "max_deviations": result["max_deviations"].tolist(),
        "active_codes": result["active"].tolist(),
        "num_active_dims": int(result["active"].sum()),
        "num_train": int(len(representation)),
        "batch_size": int(batch_size),
        "diff_quantile": float(diff_quantile),
        "num_bins": int(num_bins),
    }
