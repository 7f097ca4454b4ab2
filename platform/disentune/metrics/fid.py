"""Frechet distance between Gaussians fitted to feature activations (Heusel et al. 2017).

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

``Tr((S_r S_g)^(1/2))`` is computed as the sum of square roots of the eigenvalues of the
symmetric PSD matrix ``S_r^(1/2) S_g S_r^(1/2)``, which has the same spectrum as ``S_r S_g`` and
avoids a general (complex) matrix square root. From features, with no more samples than feature
dimensions (n, m <= f: covariances of rank below f, e.g. a few hundred Inception features of
2048 dimensions), the same trace is read off the ``(n, m)`` cross product instead: with centred
features ``R (n, f)`` and ``G (m, f)``, ``S_r S_g = R^T R G^T G / ((n-1)(m-1))`` has the nonzero
eigenvalues of ``(R G^T)(R G^T)^T / ((n-1)(m-1))``, so

    Tr((S_r S_g)^(1/2)) = ||R G^T||_* / sqrt((n-1)(m-1))      (the sum of R G^T's singular values),

exact, and an SVD of an ``(n, m)`` matrix in place of two eigendecompositions of ``(f, f)`` ones.
This is the formula pytorch-fid evaluates (``calculate_frechet_distance``, scipy's ``sqrtm``);
the tests check both paths against it. The value depends on the feature extractor: the
platform's default is a network trained on the dataset's own factors, and its name travels with
every FID it produces (see :mod:`disentune.metrics.factor_net`).
"""

from __future__ import annotations

import numpy as np

from disentune.metrics.base import metric


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Frechet distance between N(mu1, s1) and N(mu2, s2)."""
    root1 = _psd_sqrt(s1)
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace_sqrt = np.sqrt(np.clip(cross, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt, 0.0))


def frechet_distance_of_features(real: np.ndarray, generated: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to ``real (n, f)`` and ``generated (m, f)``.

    The cross-product form above: exact for any sizes, cheapest when ``n, m <= f``.
    """
    real = np.asarray(real, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    n, m = len(real), len(generated)
    if n < 2 or m < 2:
        raise ValueError("FID needs at least 2 points in each set")
    mu_r, mu_g = real.mean(axis=0), generated.mean(axis=0)
    r, g = real - mu_r, generated - mu_g
    trace_sqrt = np.linalg.svd(r @ g.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    diff = mu_r - mu_g
    value = diff @ diff + np.einsum("ij,ij->", r, r) / (n - 1) + np.einsum("ij,ij->", g, g) / (m - 1)
    return float(max(value - 2.0 * trace_sqrt, 0.0))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(f,)`` and unbiased covariance ``(f, f)`` of ``features (n, f)``."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


@metric(
    "fid", kind="quality", values=("fid",), defaults={"num_points": 5000}, points=lambda p: p["num_points"]
)
def compute_fid(
    real_features: np.ndarray,
    generated_features: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    extractor: str = "unnamed",
    num_points: int | None = None,
) -> dict:
    """FID between two feature sets ``(n, f)`` and ``(m, f)``; records the extractor name."""
    n, m, f = len(real_features), len(generated_features), np.shape(real_features)[-1]
    if max(n, m) <= f:
        value = frechet_distance_of_features(real_features, generated_features)
    else:
        value = frechet_distance(*gaussian_stats(real_features), *gaussian_stats(generated_features))
    return {
        "fid": value,
        "extractor": extractor,
        "num_real": int(len(real_features)),
        "num_generated": int(len(generated_features)),
    }
