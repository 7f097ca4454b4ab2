import numpy as np
import pytest

from disentune.metrics.beta_vae_score import compute_beta_vae_score, pair_features, paired_batches
from disentune.registry import METRICS

SIZES = np.array([3, 4, 5, 6])
SMALL = {"num_train": 1000, "num_eval": 500}


def score(represent, seed=0, **params):
    return compute_beta_vae_score(represent, SIZES, rng=np.random.default_rng(seed), **{**SMALL, **params})


def test_pair_features_hand_worked():
    # one point, batches of 2 pairs in 2 dims: |0-1|, |2-0| -> mean 1.5; dim 1 equal -> 0
    reps = np.array([[[[0.0, 1.0], [2.0, 1.0]], [[1.0, 1.0], [0.0, 1.0]]]])
    np.testing.assert_allclose(pair_features(reps), [[1.5, 0.0]])


def test_pairs_share_exactly_their_label_factor():
    classes, label = paired_batches(SIZES, 300, 64, np.random.default_rng(0))
    assert classes.shape == (300, 2, 64, 4) and set(label.tolist()) == {0, 1, 2, 3}
    same = classes[:, 0] == classes[:, 1]  # (B, batch, K)
    rows = np.arange(300)
    assert same[rows, :, label].all()
    # the other factors are drawn independently: they agree only by chance (1 / size)
    others = np.ones((300, 4), dtype=bool)
    others[rows, label] = False
    agreement = same.mean(axis=1)[others]
    assert agreement.mean() < 0.35
    # within a batch the label factor still varies (pairs share it, the batch does not)
    assert all(len(np.unique(classes[b, 0, :, label[b]])) > 1 for b in range(300))


def test_identity_representation_scores_near_one():
    result = score(lambda c: c.astype(float))
    assert result["beta_vae_score"] > 0.95 and result["beta_vae_train_accuracy"] > 0.95


def test_noise_representation_scores_near_chance():
    noise = np.random.default_rng(1)
    result = score(lambda c: noise.normal(size=(len(c), 6)))
    assert abs(result["beta_vae_score"] - 1 / 4) < 0.08


def test_constant_representation_scores_chance():
    result = score(lambda c: np.zeros((len(c), 4)))
    assert result["beta_vae_score"] < 1 / 4 + 0.08


def test_permuted_columns_keep_the_score():
    mixing = np.random.default_rng(2).normal(size=(4, 4))
    order = [2, 0, 3, 1]
    base = score(lambda c: c @ mixing)
    permuted = score(lambda c: (c @ mixing)[:, order])
    assert 0.3 < base["beta_vae_score"]
    assert permuted["beta_vae_score"] == pytest.approx(base["beta_vae_score"], abs=0.01)


def test_represent_is_called_in_a_few_large_batches():
    calls = []

    def represent(c):
        calls.append(len(c))
        return c.astype(float)

    score(represent)
    assert sum(calls) == 1500 * 2 * 64
    assert len(calls) <= 16 and max(calls) == 16_384


def test_registration_and_recorded_parameters():
    entry = METRICS.get("beta_vae_score")
    assert entry.kind == "intervention" and entry.values == ("beta_vae_score",)
    assert entry.defaults == {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000}
    assert entry.sample_size() == 0
    result = score(lambda c: c.astype(float), batch_size=8)
    assert {k: result[k] for k in entry.defaults} == {**entry.defaults, **SMALL, "batch_size": 8}
    assert "sklearn_version" in result and isinstance(result["lbfgs_converged"], bool)
