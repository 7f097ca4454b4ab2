import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier

from disentune.metrics.dci import BACKENDS, completeness, compute_dci, disentanglement, importance_gbt
from disentune.registry import METRICS

SIZES = (2, 3, 4)


def factors(n=400, sizes=SIZES, seed=0):
    return np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes)))


def dci(rep, f, seed=0):
    half = len(f) // 2
    return compute_dci(rep, f, rng=np.random.default_rng(seed), num_train=half, num_test=len(f) - half)


# ---- cores on importance matrices: the reference library's cases and one worked on paper ----

def test_reference_cases():
    diag = np.diag(5.0 * np.ones(5))
    one_in_ten = 1 - np.log(2) / np.log(10)
    assert disentanglement(diag) == pytest.approx(1.0) and completeness(diag) == pytest.approx(1.0)
    empty_code = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert disentanglement(empty_code) == pytest.approx(1.0)
    assert completeness(empty_code) == pytest.approx(1.0)
    zero = np.zeros((10, 10))
    assert disentanglement(zero) == pytest.approx(0.0, abs=1e-7)
    assert completeness(zero) == pytest.approx(0.0, abs=1e-7)
    redundant = np.vstack([diag, diag])  # every factor in two codes (of 10)
    assert disentanglement(redundant) == pytest.approx(1.0)
    assert completeness(redundant) == pytest.approx(one_in_ten)
    assert disentanglement(diag[:2]) == pytest.approx(1.0) and completeness(diag[:2]) == pytest.approx(1.0)
    two_factors = np.hstack([diag, diag])  # every code serves two factors (of 10)
    assert disentanglement(two_factors) == pytest.approx(one_in_ten)
    assert completeness(two_factors) == pytest.approx(1.0)


def test_hand_worked_importance():
    # code 0 serves factor 0 only (1 - H = 1), code 1 splits evenly (1 - H_2(1/2, 1/2) = 0);
    # code weights 1/3, 2/3 -> D = 1/3. Factor 0 splits evenly (0), factor 1 sits in code 1 (1);
    # factor weights 2/3, 1/3 -> C = 1/3.
    importance = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert disentanglement(importance) == pytest.approx(1 / 3, abs=1e-9)
    assert completeness(importance) == pytest.approx(1 / 3, abs=1e-9)


def test_matches_scipy_entropy_formula_of_the_reference():
    importance = np.random.default_rng(1).random((6, 4))
    per_code = 1 - scipy.stats.entropy(importance.T + 1e-11, base=4)
    per_factor = 1 - scipy.stats.entropy(importance + 1e-11, base=6)
    code_weight, factor_weight = importance.sum(1) / importance.sum(), importance.sum(0) / importance.sum()
    assert disentanglement(importance) == pytest.approx(np.sum(per_code * code_weight), abs=1e-14)
    assert completeness(importance) == pytest.approx(np.sum(per_factor * factor_weight), abs=1e-14)


def test_needs_two_codes_and_two_factors():
    with pytest.raises(ValueError, match="at least 2 codes x 2 factors"):
        disentanglement(np.ones((3, 1)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_importance_is_the_reference_gbt_loop(backend):
    f = factors(120)
    rep = f + np.random.default_rng(2).normal(scale=0.3, size=f.shape)
    importance, train_acc, test_acc = importance_gbt(rep[:60], f[:60], rep[60:], f[60:], seed=7,
                                                     backend=backend)
    for k in range(f.shape[1]):  # a binary factor (one tree a stage) and two multiclass ones
        model = GradientBoostingClassifier(random_state=7).fit(rep[:60], f[:60, k])
        np.testing.assert_allclose(importance[:, k], model.feature_importances_, rtol=0, atol=1e-12)
        assert test_acc[k] == np.mean(model.predict(rep[60:]) == f[60:, k])
        assert train_acc[k] == np.mean(model.predict(rep[:60]) == f[:60, k])


def test_backends_give_the_same_dci():
    f = factors(150, sizes=(2, 3, 5))
    rng = np.random.default_rng(4)
    rep = np.concatenate([f / 5 + rng.normal(scale=0.1, size=f.shape), rng.normal(size=(150, 2))], axis=1)
    fast, reference = (compute_dci(rep, f, rng=np.random.default_rng(5), num_train=100, num_test=50,
                                   backend=backend) for backend in ("presorted", "sklearn"))
    assert fast["gbt_backend"] == "presorted" and reference["gbt_backend"] == "sklearn"
    np.testing.assert_allclose(fast["importance_matrix"], reference["importance_matrix"],
                               rtol=0, atol=1e-12)
    for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness",
                "dci_informativeness_train"):
        assert fast[key] == pytest.approx(reference[key], rel=0, abs=1e-12)
    assert fast["dci_informativeness_per_factor"] == reference["dci_informativeness_per_factor"]


def test_unknown_backend_is_refused():
    f = factors(40, sizes=(2, 2))
    with pytest.raises(ValueError, match="backend must be one of presorted, sklearn"):
        compute_dci(f.astype(float), f, rng=np.random.default_rng(0), num_train=30, num_test=10,
                    backend="xgb")


# ---- the metric on representations (the reference library's sanity cases) ----

def test_identity_representation_scores_near_one_and_permuting_columns_keeps_it():
    f = factors()
    result = dci(f.astype(float), f)
    assert result["dci_disentanglement"] > 0.99 and result["dci_completeness"] > 0.99
    assert result["dci_informativeness"] == 1.0 and result["dci_informativeness_train"] == 1.0
    permuted = dci(f[:, [2, 0, 1]].astype(float), f)
    for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert permuted[key] == pytest.approx(result[key], abs=1e-6)
    np.testing.assert_allclose(np.array(permuted["importance_matrix"]),
                               np.array(result["importance_matrix"])[[2, 0, 1]], atol=1e-9)


def test_constant_representation_scores_zero():
    f = factors()
    result = dci(np.ones((len(f), 3)), f)
    assert result["dci_disentanglement"] == pytest.approx(0.0, abs=1e-9)
    assert result["dci_completeness"] == pytest.approx(0.0, abs=1e-9)
    majority = np.mean([np.max(np.bincount(f[200:, k])) / 200 for k in range(3)])
    assert result["dci_informativeness"] <= majority + 1e-12


def test_shuffled_factors_score_low():
    # the reference's "bad" representation: each sample's factor columns in a random order
    f = factors()
    rng = np.random.default_rng(3)
    rep = np.array([rng.permutation(row) for row in f]).astype(float)
    result = dci(rep, f)
    assert result["dci_disentanglement"] < 0.2 and result["dci_completeness"] < 0.2


def test_duplicated_latents_keep_disentanglement_and_halve_completeness():
    f = factors()
    result = dci(np.concatenate([f, f], axis=1).astype(float), f)
    assert result["dci_disentanglement"] > 0.99
    # each factor's importance split between 2 of 6 codes: 1 - log 2 / log 6 when split evenly
    assert result["dci_completeness"] == pytest.approx(1 - np.log(2) / np.log(6), abs=0.1)


def test_registration_and_recorded_parameters():
    entry = METRICS.get("dci")
    assert entry.kind == "representation"
    assert entry.values == ("dci_disentanglement", "dci_completeness", "dci_informativeness")
    assert entry.defaults == {"num_train": 10_000, "num_test": 5_000}
    assert entry.sample_size() == 15_000
    f = factors(40, sizes=(2, 2))
    result = compute_dci(f.astype(float), f, rng=np.random.default_rng(0), num_train=30, num_test=10)
    assert result["num_train"] == 30 and result["num_test"] == 10 and "sklearn_version" in result
    assert np.array(result["importance_matrix"]).shape == (2, 2)
    with pytest.raises(ValueError, match="num_train \\+ num_test = 50"):
        compute_dci(f.astype(float), f, rng=np.random.default_rng(0), num_train=40, num_test=10)
