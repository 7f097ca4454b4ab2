"""FactorVAE score (Kim & Mnih 2018, Sec. 4), as defined in disentanglement_lib.

Each training point is a batch of ``batch_size`` (64) samples that share the class of one random
factor ``k``. Its representation's per-dimension variance (``ddof=1``), divided by the global
variance from ``num_variance_estimate`` (10,000) random samples, gives the vote
``(k, argmin_j var_j / global_var_j)``; dimensions with global std below ``prune_threshold``
(0.05, the reference study's ``prune_dims.threshold``) are left out. The classifier maps each
dimension to the factor with most training votes (first on ties); the score is its accuracy on
``num_eval`` (5,000) fresh batches, after ``num_train`` (10,000) training batches.

The batches are drawn all at once and encoded in a few large ``represent`` calls; the votes are the
reference's, whose per-batch loop draws the same distribution in another order.
"""

from __future__ import annotations

import numpy as np

from disentune.metrics.base import REPRESENT_CHUNK, Represent, metric, represent_in_chunks

def fixed_factor_batches(
    factor_sizes: np.ndarray, num_batches: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Classes ``(B, batch, K)`` of ``B`` batches and their fixed factor ``(B,)``.

    In batch ``b`` every sample takes its first sample's class of factor ``fixed[b]``; the other
    factors are uniform.
    """
    factor_sizes = np.asarray(factor_sizes)
    fixed = rng.integers(0, len(factor_sizes), size=num_batches)
    classes = rng.integers(0, factor_sizes, size=(num_batches, batch_size, len(factor_sizes)))
    rows = np.arange(num_batches)
    classes[rows, :, fixed] = classes[rows, 0, fixed][:, None]
    return classes, fixed


def batch_votes(
    representations: np.ndarray, fixed: np.ndarray, global_variances: np.ndarray, num_factors: int
) -> np.ndarray:
    """Votes ``(K, d)`` from batches ``(B, batch, d)`` with fixed factors ``(B,)``.

    ``representations`` and ``global_variances (d,)`` hold the active dimensions only.
    """
    local = representations.var(axis=1, ddof=1)
    argmin = np.argmin(local / global_variances, axis=1)
    votes = np.zeros((num_factors, representations.shape[2]), dtype=np.int64)
    np.add.at(votes, (fixed, argmin), 1)
    return votes


def majority_vote_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    """Share of ``votes (K, d)`` whose factor is ``classifier (d,)``'s factor for their dimension.

    >>> train = np.array([[3, 0], [1, 4]])   # dim 0 -> factor 0, dim 1 -> factor 1
    >>> classifier = np.argmax(train, axis=0)
    >>> majority_vote_accuracy(train, classifier)  # (3 + 4) / 8
    0.875
    """
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


@metric(
    "factor_vae_score",
    kind="intervention",
    values=("factor_vae_score",),
    defaults={"batch_size": 64, "num_train": 10_000, "num_eval": 5_000,
              "num_variance_estimate": 10_000, "prune_threshold": 0.05},
)
def compute_factor_vae_score(
    represent: Represent,
    factor_sizes: np.ndarray,
    *,
    rng: np.random.Generator,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
) -> dict:
    """FactorVAE score of ``represent(classes (n, K)) -> (n, d)`` on factors of ``factor_sizes (K,)``."""
    factor_sizes = np.asarray(factor_sizes)
    num_factors = len(factor_sizes)
    params = {"batch_size": int(batch_size), "num_train": int(num_train), "num_eval": int(num_eval),
              "num_variance_estimate": int(num_variance_estimate), "prune_threshold": float(prune_threshold)}
    sample = rng.integers(0, factor_sizes, size=(num_variance_estimate, num_factors))
    global_variances = represent_in_chunks(represent, sample).var(axis=0, ddof=1)
    active = np.sqrt(global_variances) >= prune_threshold
    if not active.any():
        return {"factor_vae_score": 0.0, "factor_vae_train_accuracy": 0.0, "num_active_dims": 0,
                "note": f"every dimension's global std is below prune_threshold={prune_threshold}", **params}

    def votes(num_batches: int) -> np.ndarray:
        classes, fixed = fixed_factor_batches(factor_sizes, num_batches, batch_size, rng)
        total = np.zeros((num_factors, int(active.sum())), dtype=np.int64)
        per_call = max(1, REPRESENT_CHUNK // batch_size)  # whole batches per represent call
        for start in range(0, num_batches, per_call):
            reps = represent_in_chunks(represent, classes[start : start + per_call])[:, :, active]
            total += batch_votes(reps, fixed[start : start + per_call], global_variances[active], num_factors)
        return total

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = votes(num_eval)
    active_dims = np.flatnonzero(active)
    return {
        "factor_vae_score": majority_vote_accuracy(eval_votes, classifier),
        "factor_vae_train_accuracy": majority_vote_accuracy(train_votes, classifier),
        "num_active_dims": int(active.sum()),
        "active_dims": active_dims.tolist(),
        "active_dim_factor": classifier.tolist(),  # the factor each active dimension votes for
        "train_votes": train_votes.tolist(),
        **params,
    }
