import numpy as np
import scipy.linalg

import pytest

from disentune.metrics.fid import compute_fid, frechet_distance, frechet_distance_of_features, gaussian_stats


def _sqrtm_fid(x: np.ndarray, y: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance: scipy's general matrix square root of S_x S_y."""
    (mu1, s1), (mu2, s2) = gaussian_stats(x), gaussian_stats(y)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_identical_feature_sets_give_zero():
    x = np.random.default_rng(0).normal(size=(2000, 16))
    assert compute_fid(x, x)["fid"] < 1e-6


def test_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert np.isclose(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected)


def test_general_covariances_match_matrix_square_root_formula():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(5), m2 @ m2.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert np.isclose(frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-8)


def test_symmetric_and_sample_estimate_converges():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20_000, 4))
    y = rng.normal(loc=0.5, scale=2.0, size=(20_000, 4))
    assert np.isclose(compute_fid(x, y)["fid"], compute_fid(y, x)["fid"])
    # closed form: 4 * 0.5^2 + 4 * (1 + 4 - 2 * 2) = 5
    assert abs(compute_fid(x, y)["fid"] - 5.0) < 0.2


def test_records_extractor_and_sizes():
    x = np.random.default_rng(3).normal(size=(50, 3))
    out = compute_fid(x, x[:40], extractor="factornet-test:abc")
    assert out["extractor"] == "factornet-test:abc"
    assert (out["num_real"], out["num_generated"]) == (50, 40)
    mu, cov = gaussian_stats(x)
    assert mu.shape == (3,) and cov.shape == (3, 3)


@pytest.mark.parametrize("n, m, f", [(400, 300, 12), (20, 25, 64), (7, 7, 300)])
def test_cross_product_form_equals_the_matrix_square_root(n: int, m: int, f: int):
    # full-rank covariances (n > f) and rank-deficient ones (n < f: fewer images than features)
    rng = np.random.default_rng(n)
    scale = rng.random(f) + 0.1
    x = np.abs(rng.normal(size=(n, f))) * scale
    y = np.abs(rng.normal(loc=0.3, size=(m, f))) * scale
    reference = _sqrtm_fid(x, y)
    assert reference > 0.01
    assert frechet_distance_of_features(x, y) == pytest.approx(reference, rel=1e-7)
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(y)) == pytest.approx(reference, rel=1e-6)
    assert compute_fid(x, y)["fid"] == pytest.approx(reference, rel=1e-7)  # either path
    assert frechet_distance_of_features(x, x) < 1e-8 * reference
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance_of_features(x[:1], y)
