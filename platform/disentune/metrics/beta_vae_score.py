"""BetaVAE score (Higgins et al. 2017, Sec. 3), as defined in disentanglement_lib (``beta_vae_sklearn``).

Each point pairs two batches of ``batch_size`` (64) samples whose pairs share the class of one
random factor ``k`` (the label); its feature is the mean absolute difference of the pairs'
representations ``(d,)``. A ``sklearn.linear_model.LogisticRegression`` (default parameters, as the
reference) trained on ``num_train`` (10,000) points predicts ``k``; the score is its accuracy on
``num_eval`` (5,000) fresh points.

The pairs are drawn all at once and encoded in a few large ``represent`` calls; the features are
the reference's, whose per-point loop draws the same distribution in another order.
"""

from __future__ import annotations

import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from disentune.metrics.base import REPRESENT_CHUNK, Represent, metric, represent_in_chunks


def paired_batches(
    factor_sizes: np.ndarray, num_points: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Classes ``(B, 2, batch, K)`` of ``B`` batch pairs and their shared factor ``(B,)``.

    Pair ``(b, 0, s)``, ``(b, 1, s)`` agree on factor ``label[b]``; everything else is uniform.
    """
    factor_sizes = np.asarray(factor_sizes)
    label = rng.integers(0, len(factor_sizes), size=num_points)
    classes = rng.integers(0, factor_sizes, size=(num_points, 2, batch_size, len(factor_sizes)))
    rows = np.arange(num_points)
    classes[rows, 1, :, label] = classes[rows, 0, :, label]
    return classes, label


def pair_features(representations: np.ndarray) -> np.ndarray:
    """Mean absolute difference over each batch pair: ``(B, 2, batch, d) -> (B, d)``.

    >>> pair_features(np.array([[[[0.0, 1.0], [2.0, 1.0]], [[1.0, 1.0], [0.0, 1.0]]]]))
    array([[1.5, 0. ]])
    """
    return np.abs(representations[:, 0] - representations[:, 1]).mean(axis=1)


def sample_points(
    represent: Represent, factor_sizes: np.ndarray, num_points: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(num_points, d)`` and labels ``(num_points,)``, whole pairs per ``represent`` call."""
    classes, labels = paired_batches(factor_sizes, num_points, batch_size, rng)
    per_call = max(1, REPRESENT_CHUNK // (2 * batch_size))
    features = np.concatenate([pair_features(represent_in_chunks(represent, classes[i : i + per_call]))
                               for i in range(0, num_points, per_call)])
    return features, labels


@metric(
    "beta_vae_score",
    kind="intervention",
    values=("beta_vae_score",),
    defaults={"batch_size": 64, "num_train": 10_000, "num_eval": 5_000},
)
def compute_beta_vae_score(
    represent: Represent,
    factor_sizes: np.ndarray,
    *,
    rng: np.random.Generator,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
) -> dict:
    """BetaVAE score of ``represent(classes (n, K)) -> (n, d)`` on factors of ``factor_sizes (K,)``."""
    train_x, train_y = sample_points(represent, factor_sizes, num_train, batch_size, rng)
    seed = int(rng.integers(2**31 - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(random_state=seed).fit(train_x, train_y)
    eval_x, eval_y = sample_points(represent, factor_sizes, num_eval, batch_size, rng)
    return {
        "beta_vae_score": float(np.mean(model.predict(eval_x) == eval_y)),
        "beta_vae_train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
        "lbfgs_converged": bool(np.all(model.n_iter_ < model.max_iter)),
        "batch_size": int(batch_size),
        "num_train": int(num_train),
        "num_eval": int(num_eval),
        "logistic_random_state": seed,
        "sklearn_version": sklearn.__version__,
    }
