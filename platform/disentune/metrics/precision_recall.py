"""Improved precision and recall (Kynkaanniemi, Karras, Laine, Lehtinen & Aila 2019).

Each feature set approximates its manifold by the union of balls around its samples, each ball's
radius the distance to the sample's ``k``-th nearest neighbour within the same set (their Eq. 2):

    f(phi, Phi) = 1  if  ||phi - phi'||_2 <= ||phi' - NN_k(phi', Phi)||_2  for some phi' in Phi

    precision = 1/|Phi_g| sum_{phi_g} f(phi_g, Phi_r)      (generated samples on the real manifold)
    recall    = 1/|Phi_r| sum_{phi_r} f(phi_r, Phi_g)      (real samples on the generated manifold)

Distances are exact Euclidean distances, computed in row batches of at most ``max_elements``
pairs so memory stays bounded whatever the set sizes; squared distances are compared, which is
the same test. ``k = 3`` and 5,000 points per set follow the paper's defaults (their reference
code counts the sample itself as its own nearest neighbour at distance 0, so ``NN_k`` is the
``k+1``-th smallest distance, as here).

>>> real = np.array([[0.0], [1.0], [2.0], [10.0]]); gen = np.array([[0.5], [5.0], [19.0], [30.0]])
>>> precision_recall(real, gen, k=1)  # worked out in the tests
(0.5, 1.0)
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from disentune.metrics.base import metric

MAX_ELEMENTS = 1 << 23  # pairwise distances held at once (64 MiB of float64)


def _batches(n_rows: int, n_cols: int, max_elements: int) -> Iterator[slice]:
    step = max(1, max_elements // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _squared_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` squared Euclidean distances, clipped at 0 against rounding."""
    d = (a * a).sum(axis=1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """Squared distance ``(n,)`` from each row of ``features (n, f)`` to its k-th nearest other row."""
    features = np.asarray(features, dtype=np.float64)
    if not 1 <= k < len(features):
        raise ValueError(f"k must be in [1, {len(features) - 1}] for {len(features)} points, got {k}")
    sq = (features * features).sum(axis=1)
    radii = np.empty(len(features))
    for rows in _batches(len(features), len(features), max_elements):
        d = _squared_distances(features[rows], features, sq)
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = 0.0  # self, exactly
        radii[rows] = np.partition(d, k, axis=1)[:, k]
    return radii


def inside_manifold(
    queries: np.ndarray, support: np.ndarray, radii: np.ndarray, max_elements: int = MAX_ELEMENTS
) -> np.ndarray:
    """Boolean ``(q,)``: is each query within the ball (squared ``radii (s,)``) of some support row."""
    queries = np.asarray(queries, dtype=np.float64)
    support = np.asarray(support, dtype=np.float64)
    sq = (support * support).sum(axis=1)
    inside = np.empty(len(queries), dtype=bool)
    for rows in _batches(len(queries), len(support), max_elements):
        inside[rows] = (_squared_distances(queries[rows], support, sq) <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(
    real: np.ndarray, generated: np.ndarray, k: int = 3, max_elements: int = MAX_ELEMENTS
) -> tuple[float, float]:
    """Improved precision and recall of ``generated (m, f)`` against ``real (n, f)``."""
    real_radii = knn_radii(real, k, max_elements)
    generated_radii = knn_radii(generated, k, max_elements)
    precision = inside_manifold(generated, real, real_radii, max_elements).mean()
    recall = inside_manifold(real, generated, generated_radii, max_elements).mean()
    return float(precision), float(recall)


@metric(
    "precision_recall",
    kind="quality",
    values=("precision", "recall"),
    defaults={"num_points": 5000, "k": 3},
    points=lambda p: p["num_points"],
)
def compute_precision_recall(
    real_features: np.ndarray,
    generated_features: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    extractor: str = "unnamed",
    num_points: int | None = None,
    k: int = 3,
) -> dict:
    """Precision and recall of feature sets ``(n, f)`` (real) and ``(m, f)`` (generated).

    Deterministic given its inputs (``rng`` is accepted for the common metric signature). Uses
    the first ``num_points`` rows of each set (all when None); records the extractor name.
    """
    real, generated = np.asarray(real_features), np.asarray(generated_features)
    if num_points is not None:
        real, generated = real[:num_points], generated[:num_points]
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"feature sets must be (n, f) and (m, f), got {real.shape} and {generated.shape}")
    precision, recall = precision_recall(real, generated, k)
    return {
        "precision": precision,
        "recall": recall,
        "k": int(k),
        "extractor": extractor,
        "num_real": int(len(real)),
        "num_generated": int(len(generated)),
    }
