import numpy as np
import pytest

from disentune.metrics.factor_vae_score import (
    batch_votes,
    compute_factor_vae_score,
    fixed_factor_batches,
    majority_vote_accuracy,
)
from disentune.registry import METRICS

SIZES = np.array([3, 4, 5, 6])
SMALL = {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 1000}


def score(represent, seed=0, **params):
    return compute_factor_vae_score(represent, SIZES, rng=np.random.default_rng(seed), **{**SMALL, **params})


def test_majority_vote_hand_worked():
    train = np.array([[3, 0, 1], [1, 4, 0]])  # dims 0, 1, 2 -> factors 0, 1, 0 (column 2: 1 vs 0)
    classifier = np.argmax(train, axis=0)
    assert classifier.tolist() == [0, 1, 0]
    assert majority_vote_accuracy(train, classifier) == pytest.approx(8 / 9)  # (3 + 4 + 1) / 9
    evaluation = np.array([[1, 2, 0], [0, 1, 2]])  # right: 1 (dim 0) + 1 (dim 1) + 0 (dim 2) of 6
    assert majority_vote_accuracy(evaluation, classifier) == pytest.approx(2 / 6)


def test_batch_votes_hand_worked():
    # batch 0 (fixed factor 1): dim 1 is constant -> argmin 1; batch 1 (fixed factor 0): dim 0
    # varies by 1 and dim 1 by 2, but dim 0's global variance is 4x larger -> ratio 1/16 vs 1 -> dim 0
    reps = np.array([[[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]],
                     [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]])
    votes = batch_votes(reps, np.array([1, 0]), np.array([16.0, 4.0]), num_factors=2)
    np.testing.assert_array_equal(votes, [[1, 0], [0, 1]])


def test_batches_fix_one_factor_each():
    classes, fixed = fixed_factor_batches(SIZES, 400, 64, np.random.default_rng(0))
    assert classes.shape == (400, 64, 4) and set(fixed.tolist()) == {0, 1, 2, 3}
    for b in range(400):
        assert len(np.unique(classes[b, :, fixed[b]])) == 1
        others = [k for k in range(4) if k != fixed[b]]
        assert all(len(np.unique(classes[b, :, k])) > 1 for k in others)
    assert (classes < SIZES).all() and (classes >= 0).all()


def test_identity_representation_scores_one():
    result = score(lambda c: c.astype(float))
    assert result["factor_vae_score"] == 1.0 and result["factor_vae_train_accuracy"] == 1.0
    assert result["num_active_dims"] == 4 and result["active_dim_factor"] == [0, 1, 2, 3]


def test_noise_representation_scores_near_chance():
    noise = np.random.default_rng(1)
    result = score(lambda c: noise.normal(size=(len(c), 6)))
    assert abs(result["factor_vae_score"] - 1 / 4) < 0.08


def test_constant_representation_is_pruned_to_zero():
    result = score(lambda c: np.zeros((len(c), 4)))
    assert result["factor_vae_score"] == 0.0 and result["num_active_dims"] == 0 and "note" in result


def test_low_variance_dimensions_are_pruned():
    def represent(c):  # a fifth dimension with std 0.01 < 0.05 that would win every argmin
        return np.concatenate([c, 0.01 * (c[:, :1] % 2)], axis=1).astype(float)
    result = score(represent)
    assert result["num_active_dims"] == 4 and result["active_dims"] == [0, 1, 2, 3]
    assert result["factor_vae_score"] == 1.0


def test_permuted_columns_keep_the_score():
    mixing = np.random.default_rng(2).normal(size=(4, 4))
    order = [2, 0, 3, 1]
    base = score(lambda c: c @ mixing)
    permuted = score(lambda c: (c @ mixing)[:, order])
    assert 0.3 < base["factor_vae_score"] < 1.0
    assert permuted["factor_vae_score"] == base["factor_vae_score"]
    assert permuted["factor_vae_train_accuracy"] == base["factor_vae_train_accuracy"]


def test_represent_is_called_in_a_few_large_batches():
    calls = []

    def represent(c):
        calls.append(len(c))
        return c.astype(float)

    score(represent)
    # 1,000 variance rows + (1,000 + 500) batches of 64 rows, at most 16,384 rows a call
    assert sum(calls) == 1000 + 1500 * 64
    assert len(calls) <= 8 and max(calls) == 16_384


def test_registration_and_recorded_parameters():
    entry = METRICS.get("factor_vae_score")
    assert entry.kind == "intervention" and entry.values == ("factor_vae_score",)
    assert entry.defaults == {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000,
                              "num_variance_estimate": 10_000, "prune_threshold": 0.05}
    assert entry.sample_size() == 0
    result = score(lambda c: c.astype(float), batch_size=16)
    assert {k: result[k] for k in entry.defaults} == {**entry.defaults, **SMALL, "batch_size": 16}
