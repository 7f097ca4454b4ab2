"""disentanglement_lib's unsupervised scores: closed forms, the reference's formulas, and how the
suite feeds them from images without factors."""

import numpy as np
import pytest
import scipy.linalg
from sklearn.metrics import mutual_info_score as sk_mutual_info

from disentune.metrics.suite import run_metric
from disentune.metrics.unsupervised import (
    compute_unsupervised,
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    mutual_info_score,
)
from disentune.registry import METRICS

from tests.unit.metrics.toy_inputs import PixelEncoder, PixelImages, inputs


def random_cov(d, seed):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


@pytest.mark.parametrize("a, b, c", [(1.0, 1.0, 0.9), (2.0, 0.5, -0.3), (4.0, 1.0, 0.0)])
def test_total_correlation_of_a_bivariate_gaussian(a, b, c):
    # KL(N(0, S) || N(0, diag S)) = -log(1 - rho^2) / 2 with rho^2 = c^2 / (a b)
    cov = np.array([[a, c], [c, b]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * np.log(1 - c * c / (a * b)), abs=1e-12)


def test_total_correlation_is_the_kl_to_the_product_of_marginals():
    cov = random_cov(5, 0)
    diag = np.diag(np.diag(cov))
    # the reference test's kl_gaussians_numerically_unstable with equal means
    kl = 0.5 * (np.trace(np.linalg.inv(diag) @ cov) - 5 + np.log(np.linalg.det(diag) / np.linalg.det(cov)))
    assert gaussian_total_correlation(cov) == pytest.approx(kl, rel=1e-10)
    block = scipy.linalg.block_diag(np.array([[1.0, 0.5], [0.5, 1.0]]), np.array([[3.0]]))
    assert gaussian_total_correlation(block) == pytest.approx(-0.5 * np.log(0.75))
    assert gaussian_total_correlation(np.diag([1.0, 2.0, 3.0])) == 0.0
    assert gaussian_total_correlation(np.ones((2, 2))) == np.inf  # degenerate


@pytest.mark.parametrize("a, b, c", [(1.0, 1.0, 0.9), (2.0, 0.5, -0.3), (4.0, 1.0, 0.0)])
def test_wasserstein_of_a_bivariate_gaussian(a, b, c):
    # W2^2(N(0, S), N(0, D)) = 2 tr S - 2 tr (D^1/2 S D^1/2)^1/2; for a 2 x 2 PSD M,
    # tr M^1/2 = sqrt(tr M + 2 sqrt(det M)), here tr M = a^2 + b^2, det M = a b (a b - c^2)
    cov = np.array([[a, c], [c, b]])
    expected = 2 * (a + b) - 2 * np.sqrt(a * a + b * b + 2 * np.sqrt(a * b * (a * b - c * c)))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(expected, abs=1e-12)


def test_wasserstein_equals_the_reference_sqrtm_formula():
    for seed in range(3):
        cov = random_cov(6, seed)
        reference = 2 * np.trace(cov) - 2 * np.trace(scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])).real
        assert gaussian_wasserstein_correlation(cov) == pytest.approx(reference, rel=1e-9)
        assert gaussian_wasserstein_correlation(cov) > 0.1
    assert gaussian_wasserstein_correlation(np.diag([1.0, 4.0])) == pytest.approx(0.0, abs=1e-12)


def digitize(x, bins=20):
    return np.stack([np.digitize(x[:, j], np.histogram(x[:, j], bins)[1][:-1]) for j in range(x.shape[1])], axis=1)


def test_scores_of_a_representation_equal_hand_computations():
    rng = np.random.default_rng(1)
    cov = random_cov(4, 1)
    rep = rng.multivariate_normal(np.zeros(4), cov, size=3000)
    rep[:, 3] = rep[:, 0] ** 2  # a dependence the covariance misses and MI sees
    result = compute_unsupervised(rep, rng=rng)
    sample_cov = np.cov(rep.T)  # the reference: np.cov of (codes, points), unbiased
    np.testing.assert_allclose(result["covariance"], sample_cov, rtol=1e-12)
    assert result["gaussian_total_correlation"] == pytest.approx(
        0.5 * (np.log(np.diag(sample_cov)).sum() - np.linalg.slogdet(sample_cov)[1]), rel=1e-10)
    w = 2 * np.trace(sample_cov) - 2 * np.trace(scipy.linalg.sqrtm(sample_cov * np.diag(sample_cov)[:, None])).real
    assert result["gaussian_wasserstein_correlation"] == pytest.approx(w, rel=1e-9)
    assert result["gaussian_wasserstein_correlation_norm"] == pytest.approx(w / np.trace(sample_cov), rel=1e-9)
    codes = digitize(rep)
    pairs = [sk_mutual_info(codes[:, j], codes[:, i]) for i in range(4) for j in range(4) if i != j]
    assert result["mutual_info_score"] == pytest.approx(np.mean(pairs), rel=1e-10)
    assert np.asarray(result["mutual_info_matrix"])[0, 3] > 0.5  # z_3 = z_0^2
    assert result["num_train"] == 3000 and result["num_bins"] == 20 and result["batch_size"] == 16


def test_independent_codes_score_near_zero_and_dependent_ones_higher():
    rng = np.random.default_rng(2)
    independent = compute_unsupervised(rng.normal(size=(10_000, 5)) * [1, 2, 3, 4, 5])
    assert independent["gaussian_total_correlation"] < 5e-3
    assert independent["gaussian_wasserstein_correlation_norm"] < 5e-3
    assert independent["mutual_info_score"] < 0.03  # the 20-bin histogram estimator's bias
    z = rng.normal(size=(10_000, 5))
    z[:, 1] = z[:, 0] + 0.1 * z[:, 1]
    dependent = compute_unsupervised(z)
    assert dependent["gaussian_total_correlation"] > 1.0 and dependent["mutual_info_score"] > 0.1


def test_first_num_train_points_and_bins():
    rep = np.random.default_rng(3).normal(size=(500, 3))
    assert compute_unsupervised(rep, num_train=200) == compute_unsupervised(rep[:200])
    ten = compute_unsupervised(rep, num_bins=10)
    _, matrix = mutual_info_score(digitize(rep, 10) - 1)
    np.testing.assert_allclose(ten["mutual_info_matrix"], matrix)
    with pytest.raises(ValueError, match="d >= 2"):
        compute_unsupervised(rep[:, :1])


def test_registered_as_unsupervised_and_fed_from_images_without_factors():
    entry = METRICS.get("unsupervised")
    assert entry.kind == "unsupervised" and not entry.needs_factors
    assert entry.values == ("gaussian_total_correlation", "gaussian_wasserstein_correlation",
                            "gaussian_wasserstein_correlation_norm", "mutual_info_score")
    assert entry.sample_size() == 10_000 and entry.sample_size({"num_train": 300}) == 300
    data = PixelImages(num_images=400)  # an image collection: no factors at all
    model = inputs(PixelEncoder([0, 5, 7, 9]), data)
    values, _ = run_metric(entry, model, seed=5, params={"num_train": 300})
    index = np.random.default_rng(5).integers(0, data.num_images, 300)  # uniform image indices
    expected = compute_unsupervised(data.images_at(index).reshape(300, -1)[:, [0, 5, 7, 9]], num_train=300)
    assert [v.metric for v in values] == list(entry.values)
    for v in values:
        assert v.value == pytest.approx(expected[v.metric], rel=1e-6)
        assert v.params["num_train"] == 300 and "mutual_info_matrix" in v.params
