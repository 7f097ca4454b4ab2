"""Frechet distance between Gaussians fitted to feature activations (Heusel et al. 2017).

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

``Tr((S_r S_g)^(1/2))`` is computed as the sum of square roots of the eigenvalues of the
symmetric PSD matrix ``S_r^(1/2) S_g S_r^(1/2)``, which has the same spectrum as ``S_r S_g`` and
avoids a general (complex) matrix square root. The value depends on the feature extractor: the
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
    value = frechet_distance(*gaussian_stats(real_features), *gaussian_stats(generated_features))
    return {
        "fid": value,
        "extractor": extractor,
        "num_real": int(len(real_features)),
        "num_generated": int(len(generated_features)),
    }
