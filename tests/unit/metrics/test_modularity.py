import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from disentune.metrics.information import discrete_mutual_info, histogram_discretize
from disentune.metrics.modularity import (
    compute_modularity,
    modularity,
    modularity_per_code,
)
from disentune.registry import METRICS


def factors(n=5000, sizes=(10, 10, 10, 10), seed=0):
    return np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes)))


# ---- the core on mutual information matrices: the reference library's cases and paper ones ----

def test_reference_cases():
    diag = np.diag(5.0 * np.ones(5))
    assert modularity(diag) == 1.0
    assert modularity(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])) == pytest.approx(2 / 3)
    assert modularity(np.zeros((10, 10))) == 0.0
    assert modularity(np.vstack([diag, diag])) == 1.0  # redundant codes
    assert modularity(diag[:2]) == 1.0  # missed factors
    assert modularity(np.hstack([diag, diag])) == pytest.approx(1 - 1 / 9)  # one code, two of 10 factors


def test_hand_worked_codes():
    # squared MI (9, 1, 0): delta = 1 / (9 * 2) -> 17/18; (2, 2, 2): delta = 8 / (4 * 2) = 1 -> 0
    mi = np.array([[3.0, 1.0, 0.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(modularity_per_code(mi), [17 / 18, 0.0])
    assert modularity(mi) == pytest.approx(17 / 36)


def test_mutual_info_follows_scikit_learn_including_single_valued_columns():
    rng = np.random.default_rng(4)
    codes = np.concatenate([rng.integers(0, 5, size=(300, 2)), np.full((300, 1), 7)], axis=1)
    facs = np.concatenate([(codes[:, :1] + rng.integers(0, 2, size=(300, 1))) % 3, np.zeros((300, 1), int),
                           rng.integers(0, 4, size=(300, 1))], axis=1)
    ours = discrete_mutual_info(codes, facs)
    ref = np.array([[mutual_info_score(facs[:, k], codes[:, i]) for k in range(3)] for i in range(3)])
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert (ours[2] == 0).all() and (ours[:, 1] == 0).all()  # exactly 0, not rounding noise


def test_needs_two_factors():
    with pytest.raises(ValueError, match="at least 2 factors"):
        modularity(np.ones((3, 1)))


# ---- the metric on representations ----

def test_identity_representation_scores_near_one():
    f = factors()
    result = compute_modularity(f.astype(float), f)
    assert result["modularity"] > 0.99
    np.testing.assert_allclose(result["mutual_info"],
                               discrete_mutual_info(histogram_discretize(f.astype(float), 20), f), atol=1e-12)


def test_constant_representation_scores_zero():
    f = factors()
    assert compute_modularity(np.ones((len(f), 4)), f)["modularity"] == 0.0


def test_shuffled_factors_score_low():
    # the reference's "bad" representation: each sample's factor columns in a random order
    f = factors()
    rng = np.random.default_rng(1)
    rep = np.array([rng.permutation(row) for row in f]).astype(float)
    assert compute_modularity(rep, f)["modularity"] < 0.2


def test_noise_scores_low():
    f = factors()
    assert compute_modularity(np.random.default_rng(2).normal(size=(len(f), 4)), f)["modularity"] < 0.35


def test_duplicated_latents_keep_modularity_and_mixed_ones_lower_it():
    f = factors()
    duplicated = compute_modularity(np.concatenate([f, f], axis=1).astype(float), f)
    assert duplicated["modularity"] > 0.99  # modularity does not penalise redundancy (the reference test)
    mixed = np.concatenate([f[:, :1] + f[:, 1:2], f[:, 1:]], axis=1).astype(float)
    per_code = compute_modularity(mixed, f)["modularity_per_code"]
    assert per_code[0] < 0.8 and min(per_code[1:]) > 0.99


def test_permuted_columns_keep_the_score():
    f = factors()
    rep = f + np.random.default_rng(3).normal(scale=0.5, size=f.shape)
    base = compute_modularity(rep, f)
    permuted = compute_modularity(rep[:, [3, 1, 0, 2]], f)
    assert permuted["modularity"] == pytest.approx(base["modularity"], abs=1e-12)


def test_registration_and_recorded_parameters():
    entry = METRICS.get("modularity")
    assert entry.kind == "representation" and entry.values == ("modularity",)
    assert entry.defaults == {"num_points": 10_000, "num_bins": 20}
    assert entry.sample_size() == 10_000
    f = factors(300)
    result = compute_modularity(f.astype(float), f, num_points=200, num_bins=10)
    assert result["num_points"] == 200 and result["num_bins"] == 10 and "sklearn_version" in result
