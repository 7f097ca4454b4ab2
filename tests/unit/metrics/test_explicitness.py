import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from disentune.metrics.explicitness import compute_explicitness, explicitness_per_factor, macro_auc
from disentune.registry import METRICS


def factors(n=2000, sizes=(2, 3, 4), seed=0):
    return np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes)))


def test_macro_auc_hand_worked():
    # class 0 scores (.9, .6) against (.7, .2): 3 of 4 pairs ordered; class 1 likewise -> 0.75
    labels = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    assert macro_auc(labels, proba, np.array([0, 1])) == 0.75
    # a class absent from the labels has no AUC and is left out
    proba3 = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0]])
    assert macro_auc(labels, proba3, np.array([0, 1, 2])) == 0.75


def test_per_factor_matches_the_reference_code_path():
    f = factors(600)
    rep = f + np.random.default_rng(1).normal(scale=0.8, size=f.shape)
    x_train, x_test = rep[:400], rep[400:]
    for k in range(3):
        train, test, _ = explicitness_per_factor(x_train, f[:400, k], x_test, f[400:, k])
        model = LogisticRegression().fit(x_train, f[:400, k])
        mlb = MultiLabelBinarizer()
        ref_train = roc_auc_score(mlb.fit_transform(f[:400, k:k + 1]), model.predict_proba(x_train))
        ref_test = roc_auc_score(mlb.fit_transform(f[400:, k:k + 1]), model.predict_proba(x_test))
        assert train == pytest.approx(ref_train, abs=1e-12) and test == pytest.approx(ref_test, abs=1e-12)


def test_identity_representation_scores_near_one():
    f = factors()
    result = compute_explicitness(f.astype(float), f, num_train=1000, num_test=1000)
    assert result["explicitness"] > 0.99 and result["explicitness_train"] > 0.99


@pytest.mark.parametrize("kind", ["constant", "noise"])
def test_uninformative_representation_scores_chance(kind):
    f = factors()
    rng = np.random.default_rng(2)
    rep = np.ones((len(f), 3)) if kind == "constant" else rng.normal(size=(len(f), 3))
    result = compute_explicitness(rep, f, num_train=1000, num_test=1000)
    if kind == "constant":  # equal probabilities for every sample: AUC exactly 0.5
        assert result["explicitness"] == 0.5
    else:
        assert abs(result["explicitness"] - 0.5) < 0.05


def test_permuted_columns_keep_the_score():
    f = factors()
    rep = f + np.random.default_rng(3).normal(scale=0.8, size=f.shape)
    base = compute_explicitness(rep, f, num_train=1000, num_test=1000)
    permuted = compute_explicitness(rep[:, [2, 0, 1]], f, num_train=1000, num_test=1000)
    assert permuted["explicitness"] == pytest.approx(base["explicitness"], abs=1e-4)


def test_a_factor_missing_from_the_representation_scores_near_chance():
    f = factors()
    rng = np.random.default_rng(4)
    full = compute_explicitness(f.astype(float), f, num_train=1000, num_test=1000)
    rep = np.concatenate([f[:, :2], rng.normal(size=(len(f), 1))], axis=1).astype(float)
    without_last = compute_explicitness(rep, f, num_train=1000, num_test=1000)
    assert without_last["explicitness_per_factor"][2] < 0.6 < full["explicitness_per_factor"][2]


def test_registration_and_recorded_parameters():
    entry = METRICS.get("explicitness")
    assert entry.kind == "representation" and entry.values == ("explicitness",)
    assert entry.defaults == {"num_train": 10_000, "num_test": 5_000}
    assert entry.sample_size() == 15_000
    f = factors(90)
    result = compute_explicitness(f.astype(float), f, num_train=60, num_test=30)
    assert result["num_train"] == 60 and result["num_test"] == 30 and "sklearn_version" in result
    assert len(result["explicitness_per_factor"]) == 3 and len(result["lbfgs_converged_per_factor"]) == 3
