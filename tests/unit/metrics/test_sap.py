import warnings

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from disentune.metrics.sap import compute_sap, fit_svc_1d, predict_svc_1d, score_matrix, top_two_gap
from disentune.registry import METRICS


def factors(n=4000, sizes=(2, 3, 4), seed=0):
    return np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes)))


def reference_score_matrix(x_train, y_train, x_test, y_test):
    """disentanglement_lib's loop: one LinearSVC(C=0.01, class_weight="balanced") per pair."""
    out = np.zeros((x_train.shape[1], y_train.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(x_train.shape[1]):
            for k in range(y_train.shape[1]):
                model = LinearSVC(C=0.01, class_weight="balanced").fit(x_train[:, i:i + 1], y_train[:, k])
                out[i, k] = np.mean(model.predict(x_test[:, i:i + 1]) == y_test[:, k])
    return out


def test_top_two_gap_hand_worked():
    # factor 0: best 0.9, second 0.6 -> 0.3; factor 1: two latents tie at 0.8 -> 0
    scores = np.array([[0.9, 0.8], [0.6, 0.8], [0.1, 0.2]])
    assert top_two_gap(scores) == pytest.approx(0.15)


def test_exact_solver_matches_scikit_learn_coefficients():
    # imbalanced classes, a binary and a 5-class factor, a large offset: the liblinear problem
    rng = np.random.default_rng(1)
    f = factors(500, sizes=(2, 5), seed=1)
    f[:, 1] = np.minimum(f[:, 1], rng.integers(0, 5, 500))
    x = 100.0 + f[:, 1] + rng.normal(scale=0.7, size=500)
    for (classes, coef, intercept), k in zip(fit_svc_1d(x, f), range(2)):
        model = LinearSVC(C=0.01, class_weight="balanced", tol=1e-12, max_iter=100_000)
        model.fit(x[:, None], f[:, k])
        np.testing.assert_array_equal(classes, model.classes_)
        np.testing.assert_allclose(coef, model.coef_[:, 0], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(intercept, model.intercept_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["informative", "integer_ties", "noise"])
def test_score_matrix_equals_the_reference_loop(kind):
    rng = np.random.default_rng(2)
    f = factors(1200, sizes=(2, 3, 7), seed=2)
    if kind == "informative":
        rep = f / np.array([2, 3, 7]) + rng.normal(scale=0.2, size=f.shape)
    elif kind == "integer_ties":
        rep = np.concatenate([f, f[:, :1] * 2 - 1], axis=1).astype(float)
    else:
        rep = rng.normal(size=(1200, 3))
    ours = score_matrix(rep[:800], f[:800], rep[800:], f[800:])
    np.testing.assert_array_equal(ours, reference_score_matrix(rep[:800], f[:800], rep[800:], f[800:]))


def test_prediction_rules():
    x = np.array([-1.0, 0.0, 2.0])
    # two classes: classes[1] where w x + b > 0 (0 is not > 0)
    binary = predict_svc_1d(x, np.array([3, 7]), np.array([1.0]), np.array([0.0]))
    np.testing.assert_array_equal(binary, [3, 3, 7])
    # three classes: argmax of the lines -x, 0, x - 1
    coef, intercept = np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0])
    np.testing.assert_array_equal(predict_svc_1d(x, np.array([0, 1, 2]), coef, intercept), [0, 0, 2])
    # one class in training: always that class
    np.testing.assert_array_equal(predict_svc_1d(x, np.array([4]), np.zeros(0), np.zeros(0)), [4, 4, 4])


def test_identity_representation():
    f = factors()
    rep = f.astype(float)
    # continuous scores (the reference's own test): near 1
    assert compute_sap(rep, f, num_train=2000, num_test=2000, continuous_factors=True)["sap"] > 0.9
    # discrete: a one-vs-rest linear classifier on one latent separates the binary factor exactly;
    # with C=0.01 it cannot single out every middle class, so many-class factors score lower
    result = compute_sap(rep, f, num_train=2000, num_test=2000)
    scores = np.array(result["sap_score_matrix"])
    assert scores[0, 0] == 1.0 and np.argmax(scores, axis=0).tolist() == [0, 1, 2]
    assert result["sap"] > 0.5


@pytest.mark.parametrize("kind", ["constant", "noise", "duplicated"])
def test_uninformative_or_duplicated_representation_scores_near_zero(kind):
    f = factors()
    rng = np.random.default_rng(3)
    rep = {"constant": np.ones((len(f), 4)), "noise": rng.normal(size=(len(f), 4)),
           "duplicated": np.concatenate([f, f], axis=1).astype(float)}[kind]
    for continuous in (False, True):
        assert compute_sap(rep, f, num_train=2000, num_test=2000, continuous_factors=continuous)["sap"] < 0.05


def test_permuted_columns_keep_the_score():
    f = factors()
    rep = f + np.random.default_rng(4).normal(scale=0.3, size=f.shape)
    base = compute_sap(rep, f, num_train=2000, num_test=2000)
    permuted = compute_sap(rep[:, [1, 2, 0]], f, num_train=2000, num_test=2000)
    assert permuted["sap"] == base["sap"]
    np.testing.assert_array_equal(np.array(permuted["sap_score_matrix"]),
                                  np.array(base["sap_score_matrix"])[[1, 2, 0]])


def test_registration_and_recorded_parameters():
    entry = METRICS.get("sap")
    assert entry.kind == "representation" and entry.values == ("sap",)
    assert entry.defaults == {"num_train": 10_000, "num_test": 5_000, "continuous_factors": False}
    assert entry.sample_size() == 15_000
    f = factors(60)
    result = compute_sap(f.astype(float), f, num_train=40, num_test=20)
    assert result["num_train"] == 40 and result["num_test"] == 20 and result["svc_C"] == 0.01
    assert "sklearn_version" in result and np.array(result["sap_score_matrix"]).shape == (3, 3)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        compute_sap(f[:, :1].astype(float), f, num_train=40, num_test=20)
