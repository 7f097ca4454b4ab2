import numpy as np
import pytest

from disentune.metrics.base import Metric
from disentune.metrics.kid import compute_kid, kid_subsets, mmd2_unbiased, polynomial_kernel
from disentune.registry import METRICS


def test_hand_worked_one_dimensional():
    # f = 1: k(a, b) = (a b + 1)^3. x = {0, 1}, y = {1, 2}:
    # within x: k(0, 1) = 1; within y: k(1, 2) = 27;
    # across: k(0, 1) + k(0, 2) + k(1, 1) + k(1, 2) = 1 + 1 + 8 + 27 = 37, mean 9.25
    # MMD^2_u = 1 + 27 - 2 * 9.25 = 9.5
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert polynomial_kernel(x, y).tolist() == [[1.0, 1.0], [8.0, 27.0]]
    assert mmd2_unbiased(x, y) == pytest.approx(9.5)
    # every subset of size 2 is the whole set: mean 9.5, no spread
    out = compute_kid(x, y, rng=np.random.default_rng(0), num_subsets=5)
    assert out["kid"] == pytest.approx(9.5) and out["kid_std"] == pytest.approx(0.0)
    assert out["subset_size"] == 2


def test_hand_worked_divides_by_feature_dimension():
    # f = 2: k(a, b) = (a.b / 2 + 1)^3 gives the same numbers for x = {(0,0), (1,1)}, y = {(1,1), (2,2)}
    # k((0,0), (1,1)) = 1, k((1,1), (2,2)) = (4/2 + 1)^3 = 27, k((1,1), (1,1)) = (2/2 + 1)^3 = 8
    x, y = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 2.0]])
    assert mmd2_unbiased(x, y) == pytest.approx(9.5)


def test_hand_worked_three_points():
    # x = {0, 1, -1}: within-x pairs k(0,1) = k(0,-1) = 1, k(1,-1) = 0 -> mean over 3 pairs 2/3
    # y = {0, 0}: within 1; across: all k(x, 0) = 1 -> 1. MMD^2_u = 2/3 + 1 - 2 = -1/3 (can be < 0)
    x, y = np.array([[0.0], [1.0], [-1.0]]), np.array([[0.0], [0.0]])
    assert mmd2_unbiased(x, y) == pytest.approx(-1.0 / 3.0)


def test_identical_sets_give_about_zero():
    x = np.random.default_rng(1).normal(size=(1000, 16))
    out = compute_kid(x, x, rng=np.random.default_rng(2), num_subsets=20, subset_size=200)
    assert abs(out["kid"]) < 0.02
    # the whole set against itself: the U-statistic leaves out the diagonal within each set but not
    # across, so KID = -2 (mean k(x_i, x_i) - mean_{i != j} k(x_i, x_j)) / m, slightly negative
    k = polynomial_kernel(x[:50], x[:50])
    offdiag = (k.sum() - np.trace(k)) / (50 * 49)
    same = compute_kid(x[:50], x[:50], rng=np.random.default_rng(0), num_subsets=3, subset_size=50)
    assert same["kid"] == pytest.approx(-2 * (np.diag(k).mean() - offdiag) / 50)
    assert -0.5 < same["kid"] < 0


def test_different_gaussians_give_clearly_positive_value():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1000, 16))
    same = rng.normal(size=(1000, 16))
    shifted = rng.normal(loc=1.0, size=(1000, 16))
    kid_same = compute_kid(x, same, rng=np.random.default_rng(4), num_subsets=20, subset_size=500)
    kid_shift = compute_kid(x, shifted, rng=np.random.default_rng(4), num_subsets=20, subset_size=500)
    assert kid_shift["kid"] > 0.5
    assert kid_shift["kid"] > 20 * abs(kid_same["kid"])
    assert kid_shift["kid"] > 5 * kid_shift["kid_std"]


def test_unbiased_while_the_v_statistic_is_not():
    rng = np.random.default_rng(5)
    m, draws = 20, 400
    unbiased, biased = np.empty(draws), np.empty(draws)
    for i in range(draws):
        x, y = rng.normal(size=(m, 4)), rng.normal(size=(m, 4))
        unbiased[i] = mmd2_unbiased(x, y)
        biased[i] = (
            polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean() - 2 * polynomial_kernel(x, y).mean()
        )
    se_u = unbiased.std(ddof=1) / np.sqrt(draws)
    se_b = biased.std(ddof=1) / np.sqrt(draws)
    assert abs(unbiased.mean()) < 3 * se_u
    assert biased.mean() > 10 * se_b


def test_subsets_are_random_and_clipped():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 8)), rng.normal(loc=0.3, size=(120, 8))
    out = compute_kid(x, y, rng=np.random.default_rng(7), num_subsets=10, subset_size=1000)
    assert out["subset_size"] == 120 and out["num_subsets"] == 10
    assert (out["num_real"], out["num_generated"]) == (300, 120)
    values = kid_subsets(x, y, rng=np.random.default_rng(7), num_subsets=10, subset_size=120)
    assert values.std() > 0  # different subsets of the real set
    assert out["kid"] == pytest.approx(values.mean()) and out["kid_std"] == pytest.approx(values.std())


def test_num_points_and_extractor_recorded():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(100, 4)), rng.normal(size=(80, 4))
    out = compute_kid(x, y, rng=rng, extractor="factornet-test:abc", num_points=50, num_subsets=2)
    assert out["extractor"] == "factornet-test:abc"
    assert (out["num_real"], out["num_generated"], out["subset_size"]) == (50, 50, 50)


def test_rejects_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="at least 2"):
        compute_kid(x[:1], x, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(n, f\)"):
        compute_kid(x, np.zeros((10, 4)), rng=np.random.default_rng(0))


def test_registered_as_quality_metric():
    import disentune.metrics.kid  # noqa: F401 - registers

    entry = METRICS.get("kid")
    assert isinstance(entry, Metric) and entry.kind == "quality" and entry.values == ("kid",)
    assert entry.compute is compute_kid
    assert entry.sample_size() == 5000 and entry.sample_size({"num_points": 200}) == 200
