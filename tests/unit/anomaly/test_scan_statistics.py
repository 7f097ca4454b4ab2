import numpy as np
import pytest
from disentune.anomaly.scan_statistics import (
    STATISTICS,
    alpha_counts,
    berk_jones,
    get_statistic,
    higher_criticism,
    kolmogorov_smirnov,
)
from disentune.errors import ConfigError


def test_hand_worked_values():
    # N = 4, N_alpha = 3, alpha = 1/4: q = 3/4
    # BJ = 4 (3/4 log 3 + 1/4 log(1/3)) = 3 log 3 - log 3 = 2 log 3
    assert np.isclose(berk_jones(3, 4, 0.25), 2 * np.log(3))
    # HC = (3 - 1) / sqrt(4 * 1/4 * 3/4) = 2 / sqrt(3/4)
    assert np.isclose(higher_criticism(3, 4, 0.25), 2 / np.sqrt(0.75))
    # KS = (3 - 1) / sqrt(4) = 1
    assert np.isclose(kolmogorov_smirnov(3, 4, 0.25), 1.0)
    # every p-value significant: BJ = N log(1 / alpha); 2 of 2 at alpha = 1/2 -> 2 log 2
    assert np.isclose(berk_jones(2, 2, 0.5), 2 * np.log(2))
    assert np.isclose(higher_criticism(2, 2, 0.5), 1 / np.sqrt(0.5))  # (2 - 1) / sqrt(1/2)
    # fewer significant than expected: BJ is 0, HC and KS negative
    assert berk_jones(1, 4, 0.5) == 0.0
    assert np.isclose(higher_criticism(1, 4, 0.5), -1.0)  # (1 - 2) / sqrt(1)
    assert np.isclose(kolmogorov_smirnov(1, 4, 0.5), -0.5)  # (1 - 2) / 2
    # fractional counts (ranges): BJ(1.5, 3, 0.25) = 1.5 log 2 + 1.5 log(2/3)
    assert np.isclose(berk_jones(1.5, 3, 0.25), 1.5 * np.log(2) + 1.5 * np.log(2 / 3))


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_empty_subset_scores_zero_and_broadcasting(name):
    f = get_statistic(name)
    assert f(0, 0, 0.1) == 0.0
    out = f(np.array([[1.0], [2.0]]), np.array([2.0, 3.0, 4.0]), 0.3)
    assert out.shape == (2, 3) and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_monotonicity_used_by_the_linear_time_scan(name):
    f = get_statistic(name)
    n = np.arange(1, 40)[:, None, None].astype(float)
    x = np.linspace(0, 1, 41)[None, :, None] * n
    a = np.linspace(0.01, 0.9, 30)[None, None, :]
    v = f(x, n, a)
    assert np.all(np.diff(v, axis=1) >= -1e-12)  # non-decreasing in N_alpha
    assert np.all(np.diff(v, axis=2) <= 1e-12)  # non-increasing in alpha
    # all significant (N_alpha = N): increasing in N
    assert np.all(np.diff(f(n[:, 0, 0], n[:, 0, 0], 0.2)) > 0)
    # at fixed positive N_alpha, adding non-significant p-values lowers a positive score
    more = f(3.0, np.arange(3, 30), 0.1)
    pos = more > 0
    assert np.all(np.diff(more[pos]) < 0)


def test_alpha_counts_points_and_ranges():
    pmin = np.array([0.1, 0.2, 0.2, 0.5])
    pmax = np.array([0.1, 0.2, 0.6, 0.5])
    np.testing.assert_allclose(alpha_counts(0.2, pmin, pmax), [1, 1, 0, 0])
    np.testing.assert_allclose(alpha_counts(0.3, pmin, pmax), [1, 1, 0.25, 0])
    np.testing.assert_allclose(alpha_counts(0.6, pmin, pmax), [1, 1, 1, 1])
    np.testing.assert_allclose(alpha_counts(0.05, pmin), [0, 0, 0, 0])
    np.testing.assert_allclose(alpha_counts(np.array([[0.1], [0.5]]), pmin), [[1, 0, 0, 0], [1, 1, 1, 1]])


def test_unknown_statistic_names_the_choices():
    with pytest.raises(ConfigError, match="berk_jones, higher_criticism, kolmogorov_smirnov"):
        get_statistic("fisher")
