"""Disentanglement, Completeness and Informativeness (Eastwood & Williams 2018, Sec. 2), as defined
in disentanglement_lib.

An importance matrix ``R (d, K)`` holds, per factor ``k``, the feature importances of a
``sklearn.ensemble.GradientBoostingClassifier()`` (default parameters) predicting ``v_k`` from all
latents. With ``P_ik = R_ik / sum_k R_ik`` and ``Q_ik = R_ik / sum_i R_ik`` (after adding 1e-11)::

    D = sum_i rho_i (1 - H_K(P_i.)),   rho_i = sum_k R_ik / sum R
    C = sum_k pi_k  (1 - H_d(Q_.k)),   pi_k  = sum_i R_ik / sum R

where ``H_b`` is the entropy in base ``b`` (all-zero ``R`` weighs codes/factors uniformly).
Informativeness is the classifiers' mean test accuracy (train accuracy recorded too). The reference
study uses 10,000 train and 5,000 test points.

Cost: the classifier fits one tree per class per boosting stage (100 stages), so a 40-class factor
fits 4,000 depth-3 trees. It stays at scikit-learn's defaults, as the reference, because any other
classifier changes the importances. ``backend="sklearn"`` fits scikit-learn itself (about 300 s on
dSprites-sized factors (3, 6, 40, 32, 32) and 10,000 points on one core); the default
``"presorted"`` grows the same trees with :mod:`disentune.metrics.gbt`, which sorts each latent
once instead of at every node (about 15-20 s there; see bench/metric_speed.py), with the same
importances and accuracies up to floating-point ties.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingClassifier

from disentune.metrics.base import metric

_EPS = 1e-11  # the reference adds this before normalising importances
Backend = Literal["presorted", "sklearn"]
BACKENDS: tuple[Backend, ...] = ("presorted", "sklearn")


def _one_minus_entropy(weights: np.ndarray) -> np.ndarray:
    """``1 - H_b(p)`` per column of ``weights (b, m)``, ``p`` the column normalised, base ``b``."""
    p = (weights + _EPS) / (weights + _EPS).sum(axis=0, keepdims=True)
    return 1.0 + (p * np.log(p)).sum(axis=0) / np.log(weights.shape[0])


def _check(importance: np.ndarray) -> np.ndarray:
    importance = np.asarray(importance, dtype=np.float64)
    if importance.ndim != 2 or min(importance.shape) < 2:
        raise ValueError(
            f"DCI needs an importance matrix of at least 2 codes x 2 factors, got {importance.shape}")
    return importance


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """``1 - H_K`` of each code's importance over factors: ``(d, K) -> (d,)``."""
    return _one_minus_entropy(_check(importance).T)


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """``1 - H_d`` of each factor's importance over codes: ``(d, K) -> (K,)``."""
    return _one_minus_entropy(_check(importance))


def disentanglement(importance: np.ndarray) -> float:
    """DCI disentanglement of an importance matrix ``(d, K)``.

    >>> round(disentanglement(np.eye(3)), 6)  # each code serves one factor
    1.0
    >>> round(disentanglement(np.array([[1.0, 1.0], [0.0, 0.0]])), 6)  # one code serves both
    0.0
    """
    importance = _check(importance)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_weight = weights.sum(axis=1) / weights.sum()
    return float(np.sum(disentanglement_per_code(importance) * code_weight))


def completeness(importance: np.ndarray) -> float:
    """DCI completeness of an importance matrix ``(d, K)``.

    >>> round(completeness(np.eye(3)), 6)  # each factor captured by one code
    1.0
    >>> round(completeness(np.array([[1.0, 0.0], [1.0, 0.0]])), 6)  # factor 0 split over 2 codes
    0.0
    """
    importance = _check(importance)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    factor_weight = weights.sum(axis=0) / weights.sum()
    return float(np.sum(completeness_per_factor(importance) * factor_weight))


# a fitted factor classifier: importances (d,), its predictions on the train set (n,), predict
Fitted = tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]


def _fit_sklearn(x_train: np.ndarray, y: np.ndarray, seed: int) -> Fitted:
    model = GradientBoostingClassifier(random_state=seed).fit(x_train, y)
    return model.feature_importances_, model.predict(x_train), model.predict


def _fit_presorted(x_train: np.ndarray, y: np.ndarray, seed: int) -> Fitted:
    # imported here: the compiled trees need numba, which the registry's import should not
    from disentune.metrics.gbt import fit_boosted_trees

    model, raw_train = fit_boosted_trees(x_train, y, random_state=seed)
    return model.feature_importances, model.predict_raw(raw_train), model.predict


def importance_gbt(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    seed: int,
    backend: Backend = "presorted",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Importance ``(d, K)``, train accuracy ``(K,)`` and test accuracy ``(K,)`` of one default
    ``GradientBoostingClassifier`` per factor, fitted on ``x_train (n, d)``, ``y_train (n, K)``.

    ``seed`` fixes the classifiers' random_state, which only breaks exact ties between features.
    ``backend`` is ``"sklearn"`` (scikit-learn's estimator, the reference) or ``"presorted"`` (the
    same trees from :func:`disentune.metrics.gbt.fit_boosted_trees`).
    """
    if backend not in BACKENDS:
        raise ValueError(f"DCI backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    fit = _fit_presorted if backend == "presorted" else _fit_sklearn
    num_codes, num_factors = x_train.shape[1], y_train.shape[1]
    importance = np.zeros((num_codes, num_factors))
    train_acc, test_acc = np.zeros(num_factors), np.zeros(num_factors)
    for k in range(num_factors):
        factor_importance, train_predicted, predict = fit(x_train, y_train[:, k], seed)
        importance[:, k] = np.abs(factor_importance)
        train_acc[k] = np.mean(train_predicted == y_train[:, k])
        test_acc[k] = np.mean(predict(x_test) == y_test[:, k])
    return importance, train_acc, test_acc


@metric(
    "dci",
    kind="representation",
    values=("dci_disentanglement", "dci_completeness", "dci_informativeness"),
    defaults={"num_train": 10_000, "num_test": 5_000},
    points=lambda p: p["num_train"] + p["num_test"],
)
def compute_dci(
    representation: np.ndarray,
    factors: np.ndarray,
    *,
    rng: np.random.Generator,
    num_train: int = 10_000,
    num_test: int = 5_000,
    backend: Backend = "presorted",
) -> dict:
    """DCI of ``representation (n, d)`` against factor classes ``factors (n, K)``.

    The first ``num_train`` rows train the classifiers, the next ``num_test`` test them; ``rng``
    draws the classifiers' random_state. ``backend`` chooses how the boosted trees are fitted
    (see :func:`importance_gbt`); both give the reference's values.
    """
    representation, factors = np.asarray(representation, dtype=np.float64), np.asarray(factors)
    end = num_train + num_test
    if len(representation) < end:
        raise ValueError(f"DCI needs num_train + num_test = {end} points, got {len(representation)}")
    if representation.shape[1] < 2 or factors.shape[1] < 2:
        raise ValueError(f"DCI needs at least 2 latents and 2 factors, got {representation.shape[1]} "
                         f"and {factors.shape[1]}")
    seed = int(rng.integers(2**31 - 1))
    importance, train_acc, test_acc = importance_gbt(
        representation[:num_train], factors[:num_train],
        representation[num_train:end], factors[num_train:end], seed, backend)
    return {
        "dci_disentanglement": disentanglement(importance),
        "dci_completeness": completeness(importance),
        "dci_informativeness": float(test_acc.mean()),
        "dci_informativeness_train": float(train_acc.mean()),
        "dci_informativeness_per_factor": test_acc.tolist(),
        "dci_informativeness_train_per_factor": train_acc.tolist(),
        "dci_disentanglement_per_code": disentanglement_per_code(importance).tolist(),
        "dci_completeness_per_factor": completeness_per_factor(importance).tolist(),
        "importance_matrix": importance.tolist(),
        "num_train": int(num_train),
        "num_test": int(num_test),
        "gbt_random_state": seed,
        "gbt_backend": backend,
        "sklearn_version": sklearn.__version__,
    }
