"""Anomaly-detection metrics on ``labels (n,)`` (1 = anomalous, the positive class) and ``scores (n,)``.

Definitions (the ``metric`` column of ``anomaly_metrics.parquet``):

- ``auroc``: area under the ROC curve, ``sklearn.metrics.roc_auc_score`` (ties count one half).
- ``aupr``: area under the precision-recall curve as average precision,
  ``sklearn.metrics.average_precision_score`` (sum over thresholds of ``(R_k - R_{k-1}) P_k``, no
  interpolation).
- ``fpr_at_95tpr``: the smallest false-positive rate among the ROC operating points (thresholds at
  every distinct score, ``sklearn.metrics.roc_curve`` without dropping points) whose true-positive
  rate is at least 0.95.
- ``f1_at_contamination``: F1 of the rule "anomalous iff score > t" with ``t`` the
  ``(1 - contamination)`` quantile of the *normal* samples' scores (``numpy.quantile``, linear
  interpolation), so that about a ``contamination`` fraction of normal samples is flagged.
  ``contamination`` defaults to the anomalous fraction of ``labels``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, roc_curve

METRIC_NAMES: tuple[str, ...] = ("auroc", "aupr", "fpr_at_95tpr", "f1_at_contamination")


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels and scores must be 1-D of equal length; got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (anomalous)")
    if y.min(initial=1) == y.max(initial=0) or len(y) < 2:
        raise ValueError("labels need at least one normal (0) and one anomalous (1) sample")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return y.astype(int), s


def fpr_at_tpr(labels: np.ndarray, scores: np.ndarray, tpr_level: float = 0.95) -> float:
    """Smallest false-positive rate among ROC points with true-positive rate ``>= tpr_level``."""
    y, s = _check(labels, scores)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fpr[tpr >= tpr_level].min())


def f1_at_contamination(labels: np.ndarray, scores: np.ndarray, contamination: float | None = None) -> float:
    """F1 of ``score > quantile(normal scores, 1 - contamination)`` (module docstring)."""
    y, s = _check(labels, scores)
    rate = float(y.mean()) if contamination is None else float(contamination)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"contamination must lie in (0, 1); got {contamination!r}")
    threshold = np.quantile(s[y == 0], 1.0 - rate)
    return float(f1_score(y, (s > threshold).astype(int), zero_division=0.0))


def anomaly_metrics(labels: np.ndarray, scores: np.ndarray, contamination: float | None = None) -> dict[str, float]:
    """``{"auroc", "aupr", "fpr_at_95tpr", "f1_at_contamination"}`` for anomaly = positive."""
    y, s = _check(labels, scores)
    return {
        "auroc": float(roc_auc_score(y, s)),
        "aupr": float(average_precision_score(y, s)),
        "fpr_at_95tpr": fpr_at_tpr(y, s, 0.95),
        "f1_at_contamination": f1_at_contamination(y, s, contamination),
    }
