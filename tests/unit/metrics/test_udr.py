"""UDR (Duan et al. 2020) against a plain re-implementation of disentanglement_lib's
``compute_udr_sklearn``, its sanity cases, and how the suite feeds it from several models."""

import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import Lasso

from disentune.metrics.base import NEEDS_FACTORS
from disentune.metrics.suite import run_cross_model, run_metric
from disentune.metrics.udr import (
    compute_udr,
    gaussian_kl_per_latent,
    relative_strength_disentanglement,
    udr,
)
from disentune.registry import METRICS

from tests.unit.metrics.toy_inputs import MeanOnly, PixelEncoder, PixelImages, inputs


# ---- an independent, plain implementation: loops over model pairs, one Lasso per target ----

def plain_udr(reps, kls, correlation, filter_low_kl=True, threshold=0.01):
    num = len(reps)
    prepared, keep = [], []
    for r, kl in zip(reps, kls):
        z = (r - r.mean(axis=0)) / r.std(axis=0)  # StandardScaler; the test inputs vary per column
        prepared.append(z * (kl > 0.01))
        keep.append(kl > threshold)
    pair = np.zeros((num, num))
    for i in range(num):
        for j in range(num):
            if i == j:
                continue
            x, y = prepared[i], prepared[j]
            corr = np.zeros((x.shape[1], y.shape[1]))
            for b in range(y.shape[1]):
                if correlation == "lasso":
                    corr[:, b] = np.abs(Lasso(alpha=0.1).fit(x, y[:, b]).coef_)
                else:
                    for a in range(x.shape[1]):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")  # constant (zeroed) latents: NaN
                            corr[a, b] = abs(spearmanr(x[:, a], y[:, b]).statistic)
            if filter_low_kl:
                corr = corr[keep[i]][:, keep[j]]

            def strength(line):
                if np.isnan(line).any() or line.sum() == 0:
                    return 0.0
                return line.max() ** 2 / line.sum()

            columns = [strength(corr[:, b]) for b in range(corr.shape[1])]
            rows = [strength(corr[a]) for a in range(corr.shape[0])]
            pair[i, j] = (np.mean(columns) + np.mean(rows)) / 2
    scores = [np.median([pair[j, m] for j in range(num) if j != m]) for m in range(num)]
    return np.array(scores), pair


def mixed_models(seed, dims=(4, 5, 3, 4), n=1000):
    """Models that each mix a few shared sources (so Lasso keeps several coefficients)."""
    rng = np.random.default_rng(seed)
    sources = rng.normal(size=(n, 4))
    reps, kls = [], []
    for d in dims:
        mixing = rng.normal(size=(4, d)) * (rng.random((4, d)) < 0.6)
        reps.append(sources @ mixing + 0.3 * rng.normal(size=(n, d)) + rng.normal(size=d))
        kl = rng.uniform(0.0, 2.0, size=d)
        kl[rng.random(d) < 0.3] = 0.005  # inactive latents
        kls.append(kl)
    return reps, kls


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_plain_implementation(correlation, seed):
    reps, kls = mixed_models(seed)
    ours = udr(reps, kls, correlation=correlation)
    expected, pair = plain_udr(reps, kls, correlation)
    np.testing.assert_allclose(ours["model_scores"], expected, atol=1e-9)
    np.testing.assert_allclose(ours["pairwise"], pair, atol=1e-9)
    assert 0.05 < ours["model_scores"].min() and ours["model_scores"].max() < 0.9  # not degenerate


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_equals_plain_implementation_without_the_filter(correlation):
    reps, kls = mixed_models(2, dims=(4, 4, 4))
    ours = udr(reps, kls, correlation=correlation, filter_low_kl=False)
    expected, _ = plain_udr(reps, kls, correlation, filter_low_kl=False)
    np.testing.assert_allclose(ours["model_scores"], expected, atol=1e-9)


def test_relative_strength_reference_cases():
    # disentanglement_lib's udr_test.py cases, with their exact values
    assert relative_strength_disentanglement(np.eye(3)) == 1.0
    block = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert relative_strength_disentanglement(block) == pytest.approx(2 / 3)  # (1/2 + 1/2 + 1) / 3
    assert relative_strength_disentanglement(np.ones((3, 3))) == pytest.approx(1 / 3)
    assert relative_strength_disentanglement(np.zeros((3, 3))) == 0.0
    assert relative_strength_disentanglement(np.zeros((0, 3))) == 0.0  # nothing active on one side


def copies(seed, n=1000, d=6, num_models=4):
    """Copies of one model: latents permuted, rescaled, sign-flipped and shifted."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, d))
    return [base[:, rng.permutation(d)] * rng.uniform(0.2, 5.0, d) * rng.choice([-1.0, 1.0], d)
            + rng.normal(size=d) for _ in range(num_models)]


def test_copies_score_the_maximum_point_nine_with_lasso():
    # On standardised columns x'x / n = 1, so the Lasso(alpha) estimate of y = x is the
    # soft-thresholded x'y / n - alpha = 1 - 0.1 = 0.9, and the other latents (sample correlation
    # about 1 / sqrt(n) = 0.03 < alpha) get exactly 0: R = 0.9 P for a permutation P, whose
    # relative strength is 0.9^2 / 0.9 = 0.9 per row and column. The Lasso maximum is 1 - alpha.
    result = udr(copies(0))
    np.testing.assert_allclose(result["model_scores"], 0.9, atol=1e-9)
    off_diagonal = result["pairwise"][~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, 0.9, atol=1e-9)
    corr = result["correlations"][0][1]
    assert np.sort(corr, axis=None)[-6:] == pytest.approx([0.9] * 6) and np.sort(corr, axis=None)[-7] == 0.0


def test_copies_score_near_one_with_spearman():
    # |rho| = 1 on the matched latents; the unmatched ones keep |rho| ~ 0.03 (no shrinkage), which
    # the sums in the denominators see: about 1 / (1 + 5 * 0.025).
    scores = udr(copies(1), correlation="spearman")["model_scores"]
    assert (scores > 0.85).all() and (scores < 1.0).all()
    exact = [np.arange(-500.0, 500.0)[:, None] ** p for p in (1, 3)]  # one latent, a monotone map
    assert udr(exact, correlation="spearman")["model_scores"] == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_independent_models_score_near_zero(correlation):
    rng = np.random.default_rng(3)
    scores = udr([rng.normal(size=(1000, 6)) for _ in range(5)], correlation=correlation)["model_scores"]
    assert scores.max() < (1e-12 if correlation == "lasso" else 0.05)


def test_kl_filter_drops_inactive_latents():
    # two copies of a model whose last 3 of 5 latents are noise the models do not share and whose
    # KL is below 0.01 (the reference's test_metric_kl, with filter on and off)
    rng = np.random.default_rng(4)
    shared = rng.normal(size=(1000, 2))
    reps = [np.concatenate([shared, rng.normal(size=(1000, 3))], axis=1) for _ in range(2)]
    kl = [np.array([1.0, 0.5, 0.001, 0.009, 0.01])] * 2  # 0.01 is not above the threshold
    filtered = udr(reps, kl)
    assert filtered["model_scores"] == pytest.approx([0.9, 0.9], abs=1e-9)
    assert [a.tolist() for a in filtered["active"]] == [[True, True, False, False, False]] * 2
    unfiltered = udr(reps, kl, filter_low_kl=False)  # zeroed latents count as empty rows/columns
    assert unfiltered["model_scores"] == pytest.approx([0.9 * 2 / 5] * 2, abs=1e-9)
    no_kl = udr(reps, None)  # the noise latents stay in: nothing matches them
    assert no_kl["model_scores"] == pytest.approx([0.9 * 2 / 5] * 2, abs=1e-9)
    # the reference zeroes latents at KL <= 0.01 whatever kl_filter_threshold says (udr.py line
    # 225): copies that share all 5 latents lose the 3 low-KL ones even when the filter keeps them
    base = np.random.default_rng(8).normal(size=(1000, 5))
    shared_all = [base, -3.0 * base + 1.0]  # the same latents in the same places
    assert udr(shared_all, None)["model_scores"] == pytest.approx([0.9, 0.9], abs=1e-9)
    kept = udr(shared_all, kl, kl_filter_threshold=0.0)
    assert [a.all() for a in kept["active"]] == [True, True]
    assert kept["model_scores"] == pytest.approx([0.9 * 2 / 5] * 2, abs=1e-9)
    assert udr(shared_all, kl)["model_scores"] == pytest.approx([0.9, 0.9], abs=1e-9)


def test_a_model_without_active_latents_scores_zero_against_the_others():
    reps = copies(5, num_models=3)
    kl = [np.ones(6), np.ones(6), np.zeros(6)]
    result = udr(reps, kl)
    assert result["pairwise"][0, 1] == pytest.approx(0.9) and result["pairwise"][0, 2] == 0.0
    assert result["model_scores"].tolist() == pytest.approx([0.45, 0.45, 0.0])  # medians of (0.9, 0)


def test_wrapper_reads_kl_from_posterior_log_variances_of_the_first_points():
    means = copies(6, n=1200, num_models=3)
    logvars = [np.zeros((1200, 6)) for _ in range(3)]
    logvars[2][:, :3] = np.log(1e-4)  # a confident posterior: KL well above 0.01
    result = compute_udr(means, logvars, rng=np.random.default_rng(0), num_data_points=1000)
    expected_kl = [gaussian_kl_per_latent(m[:1000], lv[:1000]) for m, lv in zip(means, logvars)]
    np.testing.assert_allclose(result["kl_per_latent"], expected_kl)
    kl = 0.5 * (means[0][:1000] ** 2).mean(axis=0)  # logvar 0: KL = mu^2 / 2 averaged
    np.testing.assert_allclose(result["kl_per_latent"][0], kl)
    assert result["udr"] == pytest.approx(udr([m[:1000] for m in means], expected_kl)["model_scores"].tolist())
    assert result["num_data_points"] == 1000 and result["num_models"] == 3
    assert len(result["raw_correlations"]) == 3 and result["raw_correlations"][0][0] is None
    assert "raw_correlations" not in compute_udr(means, None, include_raw_correlations=False)


def test_bad_input_is_refused_with_a_message():
    reps = copies(7, num_models=2)
    with pytest.raises(ValueError, match="at least 2"):
        udr(reps[:1])
    with pytest.raises(ValueError, match="same n inputs"):
        udr([reps[0], reps[1][:500]])
    with pytest.raises(ValueError, match="correlation must be one of lasso, spearman"):
        udr(reps, correlation="pearson")
    with pytest.raises(ValueError, match="KL has shape"):
        udr(reps, [np.ones(6), np.ones(5)])


def test_registered_as_a_cross_model_metric():
    entry = METRICS.get("udr")
    assert entry.kind == "cross_model" and entry.values == ("udr",) and not entry.needs_factors
    assert "cross_model" not in NEEDS_FACTORS
    assert entry.defaults["correlation_matrix"] == "lasso" and entry.sample_size() == 1000


def test_suite_feeds_the_same_images_to_every_model():
    data = PixelImages(num_images=400)
    order = [[0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]]
    models = [inputs(PixelEncoder(cols, scale=s, logvar=[-4.0] * 4), data) for cols, s in zip(order, (1, 2, -3))]
    metric = METRICS.get("udr")
    per_model, seconds = run_cross_model(metric, models, seed=11, params={"num_data_points": 300})
    assert [v[0].metric for v in per_model] == ["udr"] * 3 and seconds >= 0
    assert [v[0].value for v in per_model] == pytest.approx([0.9] * 3, abs=1e-9)  # permuted copies
    index = np.random.default_rng(11).integers(0, 400, 300)
    pixels = data.images_at(index).reshape(300, -1)
    kl = 0.5 * ((pixels[:, :4] ** 2).mean(axis=0) + np.exp(-4.0) + 4.0 - 1.0)
    np.testing.assert_allclose(per_model[0][0].params["kl_per_latent"][0], kl, rtol=1e-5)
    assert per_model[0][0].params["num_data_points"] == 300 and "sklearn_version" in per_model[0][0].params
    # a model with only a mean (no Gaussian posterior) keeps every latent; unshared latents lower UDR
    mixed = models[:2] + [inputs(MeanOnly([0, 1, 2, 3, 5, 6]), data)]
    per_model, _ = run_cross_model(metric, mixed, seed=11, params={"num_data_points": 300})
    assert per_model[2][0].params["kl_per_latent"][2] is None
    assert per_model[2][0].value < 0.85
    with pytest.raises(ValueError, match="use run_cross_model"):
        run_metric(metric, models[0], seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        run_cross_model(metric, models[:1], seed=0)
