"""Explicitness (Ridgeway & Zemel 2018, Sec. 3), as defined in disentanglement_lib.

Per factor ``k``, a ``sklearn.linear_model.LogisticRegression()`` (default parameters) predicts
``v_k`` from the whole representation, standardised with the train set's mean and (population)
standard deviation; the factor's explicitness is the macro-averaged one-vs-rest ROC AUC of its
class probabilities, and the score is the mean over factors: 1 when every factor is linearly
read out, 0.5 (chance) when none is. The reference study uses 10,000 train and 5,000 test points
and reports both; ``explicitness`` here is the test score.
"""

from __future__ import annotations

import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from disentune.metrics.base import metric


def macro_auc(labels: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the ``classes (m,)`` columns of ``proba (n, m)``.

    Matches the reference's ``roc_auc_score(MultiLabelBinarizer().fit_transform(y), proba)``
    where that is defined; a class absent from (or alone in) ``labels`` has no AUC and is left out.

    >>> proba = np.array([[.9, .1], [.6, .4], [.7, .3], [.2, .8]])
    >>> macro_auc(np.array([0, 0, 1, 1]), proba, np.array([0, 1]))
    0.75
    """
    hot = labels[:, None] == classes[None, :]
    defined = hot.any(axis=0) & ~hot.all(axis=0)
    if not defined.any():
        return float("nan")
    return float(roc_auc_score(hot[:, defined].astype(int), proba[:, defined], average="macro"))


def explicitness_per_factor(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> tuple[float, float, bool]:
    """Train AUC, test AUC and whether lbfgs converged, for one factor: ``(n, d), (n,), (m, d), (m,)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression().fit(x_train, y_train)
    converged = bool(np.all(model.n_iter_ < model.max_iter))
    train = macro_auc(y_train, model.predict_proba(x_train), model.classes_)
    test = macro_auc(y_test, model.predict_proba(x_test), model.classes_)
    return train, test, converged


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets centred and scaled by the train set's mean and std ``(d,)`` (a constant column: 0)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


@metric(
    "explicitness",
    kind="representation",
    values=("explicitness",),
    defaults={"num_train": 10_000, "num_test": 5_000},
    points=lambda p: p["num_train"] + p["num_test"],
)
def compute_explicitness(
    representation: np.ndarray,
    factors: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    num_train: int = 10_000,
    num_test: int = 5_000,
) -> dict:
    """Explicitness of ``representation (n, d)`` against factor classes ``factors (n, K)``.

    The first ``num_train`` rows train, the next ``num_test`` test. Deterministic given its inputs
    (lbfgs uses no randomness; ``rng`` is accepted for the common metric signature).
    """
    representation, factors = np.asarray(representation, dtype=np.float64), np.asarray(factors)
    end = num_train + num_test
    if len(representation) < end:
        raise ValueError(f"explicitness needs num_train + num_test = {end} points, got {len(representation)}")
    x_train, x_test = standardise(representation[:num_train], representation[num_train:end])
    results = [explicitness_per_factor(x_train, factors[:num_train, k], x_test, factors[num_train:end, k])
               for k in range(factors.shape[1])]
    train, test, converged = (list(column) for column in zip(*results))
    return {
        "explicitness": float(np.nanmean(test)),
        "explicitness_train": float(np.nanmean(train)),
        "explicitness_per_factor": test,
        "explicitness_train_per_factor": train,
        "lbfgs_converged_per_factor": converged,
        "num_train": int(num_train),
        "num_test": int(num_test),
        "sklearn_version": sklearn.__version__,
    }
