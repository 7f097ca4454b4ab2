import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from disentune.metrics.information import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
)
from disentune.metrics.mig import compute_mig


def factors(n=10_000, sizes=(3, 6, 10, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, sizes, size=(n, len(sizes)))


def test_entropy_hand_worked():
    # a fair coin: log 2; a column always 0: 0; four equally likely values: log 4
    f = np.array([[0, 0, 0], [1, 0, 1], [0, 0, 2], [1, 0, 3]])
    np.testing.assert_allclose(discrete_entropy(f), [np.log(2), 0.0, np.log(4)])


def test_mutual_info_hand_worked():
    # x = y gives I = H(x) = log 2; x independent of y gives 0; y = x // 2 over 4 values: log 2
    x = np.array([0, 1, 0, 1, 2, 3, 2, 3])
    y_same = np.array([0, 1, 0, 1, 2, 3, 2, 3])
    y_indep = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    y_half = x // 2
    mi = discrete_mutual_info(x[:, None], np.stack([y_same, y_indep, y_half], axis=1))
    np.testing.assert_allclose(mi[0], [np.log(4), 0.0, np.log(2)], atol=1e-12)


def test_mutual_info_matches_scikit_learn():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, size=(500, 3))
    facs = (codes[:, :2] + rng.integers(0, 2, size=(500, 2))) % 4
    ours = discrete_mutual_info(codes, facs)
    ref = np.array([[mutual_info_score(codes[:, i], facs[:, k]) for k in range(2)] for i in range(3)])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_histogram_discretize_matches_reference_definition():
    x = np.random.default_rng(2).normal(size=(100, 2))
    codes = histogram_discretize(x, 20)
    for j in range(2):
        expected = np.digitize(x[:, j], np.histogram(x[:, j], 20)[1][:-1]) - 1
        np.testing.assert_array_equal(codes[:, j], expected)
    assert codes.min() == 0 and codes.max() == 19


def test_identity_representation_scores_near_one():
    f = factors()
    rep = f + np.random.default_rng(3).normal(scale=0.01, size=f.shape)
    result = compute_mig(rep.astype(float), f)
    assert result["mig"] > 0.95
    assert result["num_bins"] == 20 and result["num_points"] == len(f)


def test_permuted_and_extra_noise_dims_keep_identity_score():
    f = factors()
    rng = np.random.default_rng(4)
    rep = np.concatenate([f[:, ::-1], rng.normal(size=(len(f), 3))], axis=1)
    assert compute_mig(rep.astype(float), f)["mig"] > 0.95


@pytest.mark.parametrize("kind", ["constant", "random"])
def test_uninformative_representation_scores_near_zero(kind):
    f = factors()
    rng = np.random.default_rng(5)
    rep = np.ones((len(f), 6)) if kind == "constant" else rng.normal(size=(len(f), 6))
    assert compute_mig(rep, f)["mig"] < 0.03


def test_duplicated_factor_scores_zero_for_that_factor():
    f = factors()
    rep = np.concatenate([f, f[:, :1]], axis=1).astype(float)  # factor 0 carried by two latents
    per_factor = compute_mig(rep, f)["mig_per_factor"]
    assert per_factor[0] < 1e-9
    assert min(per_factor[1:]) > 0.95
