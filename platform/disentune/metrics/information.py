"""Discrete entropy and mutual information of integer-coded columns (natural log, nats).

The same estimators as scikit-learn's ``mutual_info_score`` on each pair of columns, as used by
disentanglement_lib, computed for all column pairs at once from one-hot contingency products.
"""

from __future__ import annotations

import numpy as np


def histogram_discretize(x: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per column, equal-width bins over the column's own range: ``(n, d)`` -> ints in [0, bins).

    Matches disentanglement_lib's ``histogram_discretize`` (``np.digitize`` against the first
    ``num_bins`` edges of ``np.histogram``), shifted to start at 0.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.histogram(x[:, j], num_bins)[1][:-1]
        out[:, j] = np.digitize(x[:, j], edges) - 1
    return out


def _one_hot(column: np.ndarray) -> np.ndarray:
    _, codes = np.unique(column, return_inverse=True)
    hot = np.zeros((column.shape[0], int(codes.max()) + 1))
    hot[np.arange(column.shape[0]), codes] = 1.0
    return hot


def _mi_from_joint(joint: np.ndarray) -> float:
    """MI of a joint probability table ``(a, b)``."""
    pa = joint.sum(axis=1, keepdims=True)
    pb = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * (np.log(joint[nz]) - np.log((pa @ pb)[nz]))).sum())


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``I(codes[:, i]; factors[:, k])`` for every pair: ``(n, d), (n, K) -> (d, K)``.

    As scikit-learn's ``mutual_info_score``: exactly 0 where either column holds a single value,
    and rounding below 0 clipped (ratios such as modularity's must not see rounding noise).
    """
    codes, factors = np.asarray(codes), np.asarray(factors)
    n = codes.shape[0]
    if factors.shape[0] != n:
        raise ValueError(f"codes and factors disagree on n: {n} vs {factors.shape[0]}")
    code_hots = [_one_hot(codes[:, i]) for i in range(codes.shape[1])]
    out = np.zeros((codes.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        factor_hot = _one_hot(factors[:, k])
        if factor_hot.shape[1] < 2:
            continue
        for i, code_hot in enumerate(code_hots):
            if code_hot.shape[1] > 1:
                out[i, k] = max(_mi_from_joint(code_hot.T @ factor_hot / n), 0.0)
    return out


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """``H(factors[:, k])`` for each column: ``(n, K) -> (K,)``."""
    factors = np.asarray(factors)
    out = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        p = np.unique(factors[:, k], return_counts=True)[1] / factors.shape[0]
        out[k] = -(p * np.log(p)).sum()
    return out
