import numpy as np
import pytest
from disentune.anomaly.detectors import (
    FEATURE_DETECTORS,
    KNN,
    Detector,
    Mahalanobis,
    SubsetScan,
)
from disentune.anomaly.pvalues import empirical_pvalues
from disentune.anomaly.subset_scan import scan_samples
from disentune.errors import ConfigError
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score


def correlated(rng, n, dim=8):
    mixing = np.random.default_rng(100).normal(size=(dim, dim))
    return rng.normal(size=(n, dim)) @ mixing + 1.0


def test_mahalanobis_matches_scipy_with_the_ledoit_wolf_covariance():
    rng = np.random.default_rng(0)
    normal, test = correlated(rng, 200), correlated(rng, 20) + rng.normal(size=(20, 8))
    det = Mahalanobis().fit(normal)
    lw = LedoitWolf().fit(normal)
    inverse = np.linalg.inv(lw.covariance_)
    expected = [mahalanobis(x, normal.mean(axis=0), inverse) for x in test]
    np.testing.assert_allclose(det.score(test), expected, rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "kth"])
def test_knn_matches_brute_force(reduction):
    rng = np.random.default_rng(1)
    normal, test = rng.normal(size=(150, 5)), rng.normal(size=(37, 5)) * 1.5
    det = KNN(k=4, reduction=reduction, batch_size=8).fit(normal)  # several batches
    expected = []
    for x in test:
        dist = np.sort([np.sqrt(np.sum((x - y) ** 2)) for y in normal])[:4]
        expected.append(dist.mean() if reduction == "mean" else dist[-1])
    np.testing.assert_allclose(det.score(test), expected, rtol=1e-12)
    # nothing is excluded: a fit sample is at distance 0 from itself
    assert np.isclose(KNN(k=1).fit(normal).score(normal[:3]), 0).all()


def test_subset_scan_detector_is_the_per_sample_scan_score():
    rng = np.random.default_rng(2)
    normal, test = rng.normal(size=(300, 40)), rng.normal(size=(25, 40)) + 0.5
    det = SubsetScan(statistic="higher_criticism", alpha_max=0.2, tails=2).fit(normal)
    pv = empirical_pvalues(test, normal, tails=2)
    expected = scan_samples(pv.pmin, pv.pmax, statistic="higher_criticism", alpha_max=0.2).score
    np.testing.assert_array_equal(det.score(test), expected)


def benchmark(rng, shifted):
    """1000 normal fit samples, 400 normal and 400 anomalous test samples in 32 dimensions."""
    normal = rng.normal(size=(1000, 32))
    anomalies = rng.normal(size=(400, 32))
    if shifted:
        anomalies[:, :8] += 2.0  # planted: a shift in 8 of 32 features
    test = np.concatenate([rng.normal(size=(400, 32)), anomalies])
    return normal, test, np.repeat([0, 1], 400)


@pytest.mark.parametrize("name", sorted(FEATURE_DETECTORS))
def test_planted_anomalies_are_detected_and_null_anomalies_are_not(name):
    rng = np.random.default_rng(3)
    for shifted in (True, False):
        normal, test, labels = benchmark(rng, shifted)
        det = FEATURE_DETECTORS[name]().fit(normal)
        assert isinstance(det, Detector)
        scores = det.score(test)
        assert scores.shape == (800,) and np.isfinite(scores).all()
        auroc = roc_auc_score(labels, scores)
        if shifted:
            assert auroc > 0.9, (name, auroc)
        else:
            assert abs(auroc - 0.5) < 0.1, (name, auroc)


def test_errors_are_clear():
    with pytest.raises(ConfigError, match="k must be"):
        KNN(k=0)
    with pytest.raises(ConfigError, match="reduction"):
        KNN(reduction="median")
    with pytest.raises(ConfigError, match="scan statistic"):
        SubsetScan(statistic="fisher")
    with pytest.raises(ConfigError, match="alpha_max"):
        SubsetScan(alpha_max=0.0)
    with pytest.raises(RuntimeError, match="before fit"):
        Mahalanobis().score(np.zeros((2, 2)))
    det = KNN(k=2).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="fitted on 2"):
        det.score(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 5"):
        KNN().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        Mahalanobis().fit(np.full((3, 2), np.nan))


def test_subset_scan_on_torch_gives_the_numpy_scan():
    import torch

    rng = np.random.default_rng(4)
    normal = np.maximum(rng.normal(size=(300, 40)), 0.0)  # ReLU-like: ties at 0
    test = np.maximum(rng.normal(size=(60, 40)) + 0.3 * (np.arange(60) < 20)[:, None], 0.0)
    for statistic in ("berk_jones", "higher_criticism"):
        expected = SubsetScan(statistic=statistic, tails=2).fit(normal).scan(test)
        det = SubsetScan(statistic=statistic, tails=2, device="cpu").fit(normal)
        assert isinstance(det.background_.sorted_by_node, torch.Tensor)
        got = det.scan(test)
        np.testing.assert_allclose(got.score, expected.score, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got.nodes, expected.nodes)
        np.testing.assert_array_equal(got.alpha, expected.alpha)
    # "auto" is CUDA where torch sees a GPU, numpy otherwise; a missing or unknown device is refused
    auto = SubsetScan(device="auto").fit(normal)
    assert isinstance(auto.background_.sorted_by_node, np.ndarray) != torch.cuda.is_available()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            SubsetScan(device="cuda")
    with pytest.raises(ConfigError, match="device"):
        SubsetScan(device="gpu please")
