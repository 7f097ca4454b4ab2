"""The presorted boosted trees against scikit-learn's GradientBoostingClassifier itself."""

import inspect

import numpy as np
import pytest
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.ensemble import GradientBoostingClassifier

from disentune.metrics.gbt import fit_boosted_trees
from disentune.metrics.gbt_kernel import _negative_gradient, _pairwise_sum

N = 360


def _labels(rng, n=N, k=4):
    return rng.integers(0, k, n)


def _informative(rng, y, d=5, scale=0.8):
    """Latents of which the first two shift with the class; the rest are noise."""
    return rng.normal(size=(len(y), d)) + scale * y[:, None] * (np.arange(d) < 2)


def continuous(rng):
    y = _labels(rng)
    return _informative(rng, y), y


def tied_values(rng):
    # many equal values: the backward running sums and ties in the sort. With more stages, a
    # node that two latents cut into the same sets gets credited to either latent depending on
    # the order of tied samples in scikit-learn's introsort (see disentune.metrics.gbt); at 20
    # stages none of this data's nodes does
    y = _labels(rng)
    return np.round(_informative(rng, y) * 2) / 2, y


def integer_codes(rng):
    y = _labels(rng)
    return np.column_stack([y + rng.integers(0, 2, N), rng.integers(0, 3, N), y % 2]).astype(float), y


def constant_and_float32_tied(rng):
    # column 2 is constant; column 3 separates class 1 but by one float32 ulp, which
    # scikit-learn's FEATURE_THRESHOLD (float32 1e-7) calls constant too
    y = _labels(rng)
    x = _informative(rng, y)
    x[:, 2] = 3.0
    x[:, 3] = np.where(y == 1, 1.0, float(np.nextafter(np.float32(1), np.float32(2))))
    return x, y


def binary(rng):  # one tree a stage, the binomial loss
    y = _labels(rng)
    return _informative(rng, y), np.where(y > 1, "b", "a")


def many_classes(rng):
    y = _labels(rng, k=9)
    return _informative(rng, y, d=6, scale=0.3), y


PROBLEMS = {f.__name__: f for f in (continuous, tied_values, integer_codes,
                                    constant_and_float32_tied, binary, many_classes)}


def _both(x, y, seed=0, **params):
    ours, raw = fit_boosted_trees(x, y, random_state=seed, **params)
    reference = GradientBoostingClassifier(random_state=seed, **params).fit(x, y)
    return ours, raw, reference


def _raw(model, x):
    return model.decision_function(x).reshape(len(x), -1)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_trees_match_scikit_learn(problem):
    rng = np.random.default_rng(sorted(PROBLEMS).index(problem))
    x, y = PROBLEMS[problem](rng)
    ours, raw, reference = _both(x, y, n_estimators=20)
    np.testing.assert_allclose(ours.feature_importances, reference.feature_importances_,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(raw, _raw(reference, x), rtol=0, atol=1e-12)
    x_new = x[rng.permutation(len(x))] + rng.normal(scale=0.3, size=x.shape)
    np.testing.assert_allclose(ours.decision_function(x_new), _raw(reference, x_new), rtol=0,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(x_new), reference.predict(x_new))
    np.testing.assert_array_equal(ours.predict_raw(raw), reference.predict(x))
    assert ours.feature.shape[1] == (1 if len(np.unique(y)) == 2 else len(np.unique(y)))


def test_constant_and_float32_tied_columns_get_no_importance():
    x, y = constant_and_float32_tied(np.random.default_rng(0))
    ours, _, _ = _both(x, y, n_estimators=5)
    assert ours.feature_importances[2] == 0.0 and ours.feature_importances[3] == 0.0
    assert ours.feature_importances.sum() == pytest.approx(1.0)


def test_ties_between_features_break_as_scikit_learns_draws():
    # duplicated columns tie exactly: which copy splits is decided by the splitter's draws
    rng = np.random.default_rng(1)
    x, y = continuous(rng)
    x = np.column_stack([x[:, 0], x[:, 0], x[:, 1], x[:, 1], x[:, 4]])
    shares = []
    for seed in (0, 1, 2):
        ours, _, reference = _both(x, y, seed=seed, n_estimators=10)
        np.testing.assert_allclose(ours.feature_importances, reference.feature_importances_,
                                   rtol=0, atol=1e-12)
        shares.append(ours.feature_importances[0] / ours.feature_importances[:2].sum())
    assert np.ptp(shares) > 0.01  # the seeds do break the ties differently


@pytest.mark.parametrize("max_depth", [1, 2, 4])
def test_other_depths_and_rates_match(max_depth):
    x, y = continuous(np.random.default_rng(2))
    ours, raw, reference = _both(x, y, n_estimators=8, max_depth=max_depth, learning_rate=0.3)
    np.testing.assert_allclose(ours.feature_importances, reference.feature_importances_,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(raw, _raw(reference, x), rtol=0, atol=1e-12)


def test_defaults_are_the_reference_estimators():
    """The defaults reproduced here are scikit-learn's; everything not exposed stays at its
    default (a change of them in scikit-learn fails here)."""
    defaults = GradientBoostingClassifier().get_params()
    ours = {k: p.default for k, p in inspect.signature(fit_boosted_trees).parameters.items()
            if p.default is not inspect.Parameter.empty}
    assert all(defaults[k] == v for k, v in ours.items()) and len(ours) == 3
    assert {k: defaults[k] for k in ("loss", "subsample", "min_samples_split", "min_samples_leaf",
                                     "min_weight_fraction_leaf", "min_impurity_decrease", "init",
                                     "max_features", "max_leaf_nodes", "ccp_alpha",
                                     "n_iter_no_change")} == {
        "loss": "log_loss", "subsample": 1.0, "min_samples_split": 2, "min_samples_leaf": 1,
        "min_weight_fraction_leaf": 0.0, "min_impurity_decrease": 0.0, "init": None,
        "max_features": None, "max_leaf_nodes": None, "ccp_alpha": 0.0, "n_iter_no_change": None}


@pytest.mark.parametrize("n_classes", [2, 7])
def test_negative_gradient_is_sklearns_loss_bit_for_bit(n_classes):
    rng = np.random.default_rng(n_classes)
    trees = 1 if n_classes == 2 else n_classes
    raw = np.ascontiguousarray(rng.normal(scale=3.0, size=(500, trees)))
    raw[:5, 0] = [-40.0, -37.0, -36.9, 0.0, 50.0]  # both branches of the binomial gradient
    y = rng.integers(0, n_classes, 500)
    out = np.empty((trees, 500))
    _negative_gradient(raw, y, out, np.empty(trees))
    if trees == 1:
        expected = -HalfBinomialLoss().gradient(y_true=y.astype(float), raw_prediction=raw[:, 0])
        np.testing.assert_array_equal(out[0], expected)
    else:
        loss = HalfMultinomialLoss(n_classes=n_classes)
        expected = -loss.gradient(y_true=y.astype(float), raw_prediction=raw)
        np.testing.assert_array_equal(out, expected.T)


def test_pairwise_sum_is_numpys_sum_bit_for_bit():
    rng = np.random.default_rng(3)
    for n in [*range(0, 300), 1000, 4097, 9999]:
        a = rng.normal(size=n) * 10.0 ** rng.uniform(-4, 4, size=n)
        assert _pairwise_sum(a, 0, n) == np.sum(a)
    a = rng.normal(size=300)
    assert _pairwise_sum(a, 17, 200) == np.sum(a[17:217])


def test_bad_input_is_refused():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_boosted_trees(x, np.zeros(20), random_state=0)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_boosted_trees(x, np.arange(20) % 2, random_state=0)
    with pytest.raises(ValueError, match="rows"):
        fit_boosted_trees(rng.normal(size=(20, 3)), np.arange(19) % 2, random_state=0)
