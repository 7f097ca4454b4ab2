"""IRS (Suter et al. 2019) against a plain re-implementation of disentanglement_lib's irs.py,
and its sanity cases."""

import numpy as np
import pytest

from disentune.metrics.irs import compute_irs, irs_score
from disentune.registry import METRICS


def quantile(values, q):
    """np.percentile's default (linear interpolation) by hand."""
    s = np.sort(values)
    position = q * (len(s) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(s) - 1)
    return s[low] + (position - low) * (s[high] - s[low])


def plain_irs(rep, factors, q=0.99, bins=20):
    """Loops over latents, factors and factor values; no code shared with the module."""
    n, d = rep.shape
    discrete = np.zeros_like(factors)
    for k in range(factors.shape[1]):  # the reference's histogram discretizer of the factors
        edges = np.histogram(factors[:, k], bins)[1][:-1]
        discrete[:, k] = np.digitize(factors[:, k], edges)
    total, weights = 0.0, 0.0
    for l in range(d):
        z = rep[:, l]
        if z.var() == 0:
            continue
        normaliser = np.abs(z - z.mean()).max()
        best = -np.inf
        for k in range(factors.shape[1]):
            deviations = []
            for value in sorted(set(discrete[:, k].tolist())):
                group = z[discrete[:, k] == value]
                deviations.append(quantile(np.abs(group - group.mean()), q))
            best = max(best, 1.0 - np.mean(deviations) / normaliser)
        total += normaliser * best
        weights += normaliser
    return total / weights if weights > 0 else 0.0


def factors(n=10_000, sizes=(3, 6, 40, 32), seed=0):
    return np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes)))


@pytest.mark.parametrize("q", [0.99, 1.0, 0.5])
def test_equals_plain_implementation(q):
    f = factors(3000)
    rng = np.random.default_rng(1)
    rep = np.stack([f[:, 0] + 0.5 * rng.normal(size=len(f)), f[:, 2] / 10 + f[:, 3] / 8,
                    rng.normal(size=len(f)), np.sin(f[:, 1]) * rng.uniform(0.5, 1.5, len(f)),
                    np.full(len(f), 3.0)], axis=1)  # a constant latent is dropped
    result = compute_irs(rep, f, diff_quantile=q)
    assert result["irs"] == pytest.approx(plain_irs(rep, f, q), abs=1e-12)
    assert 0.2 < result["irs"] < 0.95 and result["num_active_dims"] == 4
    assert result["active_codes"] == [True, True, True, True, False]


def test_a_representation_copying_the_factors_scores_one():
    f = factors(sizes=(3, 6, 10, 20))  # up to 20 classes: the 20 bins keep every class apart
    result = compute_irs(f.astype(float), f)
    assert result["irs"] == pytest.approx(1.0, abs=1e-12)
    assert result["irs_parents"] == [0, 1, 2, 3]
    noisy = compute_irs(f + np.random.default_rng(2).normal(scale=0.05, size=f.shape), f)
    assert noisy["irs"] > 0.9


def test_merged_classes_of_large_factors_lower_the_copy_score():
    f = factors(sizes=(3, 6, 40, 32))  # 40 and 32 classes share 20 bins: neighbours merge
    result = compute_irs(f.astype(float), f)
    per_code = result["irs_per_code"]
    assert per_code[0] == per_code[1] == 1.0 and 0.9 < min(per_code[2:]) < 1.0


def test_noise_scores_low():
    f = factors()
    rng = np.random.default_rng(3)
    # uniform noise: the 99% quantile of |z - E z| within a group is near the largest deviation
    assert compute_irs(rng.uniform(size=(len(f), 4)), f)["irs"] < 0.05
    # Gaussian noise: about 1 - 2.58 / 3.9 (99% quantile over the sample maximum of |z|)
    assert compute_irs(rng.normal(size=(len(f), 4)), f)["irs"] < 0.45


def test_constant_representation_scores_zero():
    f = factors(1000)
    result = compute_irs(np.zeros((1000, 3)), f)
    assert result["irs"] == 0.0 and result["num_active_dims"] == 0 and result["irs_per_code"] == []


def test_irs_score_core_on_discrete_factors():
    f = np.repeat(np.arange(4), 250)[:, None]
    z = np.stack([f[:, 0] * 2.0, np.tile([0.0, 1.0], 500)], axis=1)  # a copy; alternating noise
    result = irs_score(f, z, diff_quantile=1.0)
    # code 1: deviations 0.5 in every group, max deviation 0.5 -> 0; weights 3 and 0.5
    np.testing.assert_allclose(result["per_code"], [1.0, 0.0])
    assert result["irs"] == pytest.approx(3.0 / 3.5)


def test_registration_and_recorded_parameters():
    entry = METRICS.get("irs")
    assert entry.kind == "representation" and entry.values == ("irs",) and entry.needs_factors
    assert entry.defaults == {"num_train": 10_000, "batch_size": 16, "diff_quantile": 0.99, "num_bins": 20}
    assert entry.sample_size() == 10_000
    f = factors(400)
    result = compute_irs(f.astype(float), f, num_train=300, diff_quantile=0.9)
    assert result["num_train"] == 300 and result["diff_quantile"] == 0.9 and result["num_bins"] == 20
    with pytest.raises(ValueError, match="diff_quantile"):
        compute_irs(f.astype(float), f, diff_quantile=99)
