"""disentanglement_lib's unsupervised scores of the mean representation (Locatello et al. 2019,
Sec. 4 and appendix), as ``unsupervised_metrics`` computes them
(``disentanglement_lib/evaluation/metrics/unsupervised_metrics.py``). No factors are read.

From the mean representation of ``num_train`` images (10,000 in the reference study,
``unsupervised.gin``), its covariance ``Sigma = np.cov`` (unbiased, ``(d, d)``) with diagonal
``D = diag(Sigma)`` gives

- ``gaussian_total_correlation = KL(N(0, Sigma) || N(0, D)) = (sum_i log D_ii - log det Sigma) / 2``
  (lines 87-101);
- ``gaussian_wasserstein_correlation = W_2^2(N(0, Sigma), N(0, D)) = 2 tr Sigma - 2 tr (D Sigma)^{1/2}``
  (lines 104-114; ``cov * diag(cov)[:, None]`` there is ``D Sigma``), and its ``_norm``, divided by
  ``tr Sigma`` (lines 64-65);
- ``mutual_info_score``: the mean over ordered pairs ``i != j`` of ``I(z_i; z_j)``, each code
  discretised into 20 equal-width bins (``histogram_discretizer``, ``num_bins = 20``), MI in nats
  as scikit-learn's ``mutual_info_score`` (lines 67-72).

A degenerate covariance (a constant code, or codes that are exact linear combinations) has an
infinite total correlation, as the formula says (the reference's ``slogdet`` gives inf or NaN
there); an all-constant representation has a NaN normalised Wasserstein score (0 / 0).
"""

from __future__ import annotations

import numpy as np
import sklearn

from disentune.metrics.base import metric
from disentune.metrics.information import discrete_mutual_info, histogram_discretize


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """TC of ``N(0, cov)`` for a covariance ``(d, d)``: ``(sum log diag - log det) / 2``.

    >>> round(gaussian_total_correlation(np.array([[1.0, 0.6], [0.6, 1.0]])), 12)  # -log(1 - 0.36) / 2
    0.223143551314
    """
    cov = np.asarray(cov, dtype=np.float64)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """``W_2^2`` between ``N(0, cov)`` and the product of its marginals, ``cov`` ``(d, d)``.

    ``tr (D Sigma)^{1/2}`` is computed as the sum of square roots of the eigenvalues of the
    symmetric ``D^{1/2} Sigma D^{1/2}``, which ``D Sigma`` is similar to (the reference takes
    ``scipy.linalg.sqrtm`` of ``D Sigma`` itself; the traces agree to rounding).

    >>> round(gaussian_wasserstein_correlation(np.eye(3)), 12)
    0.0
    """
    cov = np.asarray(cov, dtype=np.float64)
    scale = np.sqrt(np.diag(cov))
    eigenvalues = np.linalg.eigvalsh(scale[:, None] * cov * scale[None, :])
    return float(2.0 * np.trace(cov) - 2.0 * np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))


def mutual_info_score(codes: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean pairwise MI of discrete codes ``(n, d)``, ``d >= 2``, and the MI matrix ``(d, d)``
    with its diagonal set to 0."""
    d = codes.shape[1]
    mutual_info = discrete_mutual_info(codes, codes)
    np.fill_diagonal(mutual_info, 0.0)
    return float(mutual_info.sum() / (d * d - d)), mutual_info


@metric(
    "unsupervised",
    kind="unsupervised",
    values=("gaussian_total_correlation", "gaussian_wasserstein_correlation",
            "gaussian_wasserstein_correlation_norm", "mutual_info_score"),
    defaults={"num_train": 10_000, "batch_size": 16, "num_bins": 20},
    points=lambda p: p["num_train"],
)
def compute_unsupervised(
    representation: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    num_train: int | None = None,
    batch_size: int = 16,
    num_bins: int = 20,
) -> dict:
    """The four unsupervised scores of a mean representation ``(n, d)``, ``d >= 2``.

    Uses the first ``num_train`` rows (all when None). ``batch_size`` is the reference's encoding
    batch, recorded only (the scores do not depend on it). Deterministic given its inputs.
    """
    representation = np.asarray(representation, dtype=np.float64)[:num_train]
    if representation.ndim != 2 or representation.shape[1] < 2:
        raise ValueError(f"the unsupervised scores need an (n, d) representation with d >= 2, "
                         f"got shape {representation.shape}")
    if len(representation) < 2 or not np.isfinite(representation).all():
        raise ValueError("the unsupervised scores need at least 2 finite points")
    cov = np.cov(representation, rowvar=False).reshape(representation.shape[1], -1)
    wasserstein = gaussian_wasserstein_correlation(cov)
    trace = float(np.trace(cov))
    mi, mi_matrix = mutual_info_score(histogram_discretize(representation, num_bins))
    return {
        "gaussian_total_correlation": gaussian_total_correlation(cov),
        "gaussian_wasserstein_correlation": wasserstein,
        "gaussian_wasserstein_correlation_norm": wasserstein / trace if trace > 0 else float("nan"),
        "mutual_info_score": mi,
        "mutual_info_matrix": mi_matrix.tolist(),
        "covariance": cov.tolist(),
        "num_train": int(len(representation)),
        "batch_size": int(batch_size),
        "num_bins": int(num_bins),
        "sklearn_version": sklearn.__version__,
    }
