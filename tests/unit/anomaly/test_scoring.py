import numpy as np
import pytest
from disentune.anomaly.scoring import (
    METRIC_NAMES,
    anomaly_metrics,
    f1_at_contamination,
    fpr_at_tpr,
)


def test_perfect_separation():
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.0, 0.0, 0.0, 0.0, 0.7, 0.9])  # normals all tie: nobody is above the threshold
    m = anomaly_metrics(labels, scores)
    assert tuple(m) == METRIC_NAMES
    assert m == {"auroc": 1.0, "aupr": 1.0, "fpr_at_95tpr": 0.0, "f1_at_contamination": 1.0}


def test_inverted_scores():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    m = anomaly_metrics(labels, scores)
    assert m["auroc"] == 0.0
    # ranked: n n n p p -> precision 1/4 at recall 1/2, 2/5 at recall 1: AP = 0.5/4 + 0.5 * 2/5
    assert np.isclose(m["aupr"], 0.325)
    assert m["fpr_at_95tpr"] == 1.0  # every normal must be flagged to catch both anomalies
    # contamination 2/5: threshold = 0.6 quantile of (0.7, 0.8, 0.9) = 0.82 -> flags one normal only
    assert m["f1_at_contamination"] == 0.0


def test_fpr_at_95_tpr_takes_the_best_qualifying_operating_point():
    anomalies = np.arange(2.0, 22.0)  # 20 anomalies with scores 2..21
    normals = np.array([0, 1, 2.5, 3.5, 10, 20, 30, 40, 50, 60.0])
    labels = np.repeat([1, 0], [20, 10])
    scores = np.concatenate([anomalies, normals])
    # threshold 3 flags 19 / 20 anomalies (TPR 0.95) and the 7 normals >= 3.5 (FPR 0.7); lower
    # thresholds keep TPR >= 0.95 but flag more normals
    assert np.isclose(fpr_at_tpr(labels, scores), 0.7)
    assert np.isclose(fpr_at_tpr(labels, scores, 1.0), 0.8)


def test_f1_at_contamination_threshold_from_normal_scores():
    labels = np.repeat([0, 1], [10, 3])
    scores = np.concatenate([np.arange(10.0), [5.0, 8.0, 10.0]])
    # contamination 0.2: threshold = 0.8 quantile of 0..9 = 7.2 -> normals 8, 9 and anomalies 8, 10
    # flagged: precision 2/4, recall 2/3, F1 = 4/7
    assert np.isclose(f1_at_contamination(labels, scores, 0.2), 4 / 7)
    # default contamination = 3/13: threshold = quantile(10/13) = 6.92 -> normals 7, 8, 9 flagged:
    # precision 2/5, recall 2/3, F1 = 1/2
    assert np.isclose(f1_at_contamination(labels, scores), 0.5)
    assert np.isclose(anomaly_metrics(labels, scores, contamination=0.2)["f1_at_contamination"], 4 / 7)


def test_random_scores_sit_at_chance():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=20_000)
    m = anomaly_metrics(labels, rng.random(20_000))
    assert abs(m["auroc"] - 0.5) < 0.02
    assert abs(m["aupr"] - labels.mean()) < 0.02
    assert abs(m["fpr_at_95tpr"] - 0.95) < 0.02


def test_bad_input():
    with pytest.raises(ValueError, match="at least one normal"):
        anomaly_metrics(np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        anomaly_metrics(np.array([0, 2]), np.arange(2.0))
    with pytest.raises(ValueError, match="equal length"):
        anomaly_metrics(np.array([0, 1]), np.arange(3.0))
    with pytest.raises(ValueError, match="contamination"):
        f1_at_contamination(np.array([0, 1]), np.arange(2.0), 1.5)
    with pytest.raises(ValueError, match="NaN"):
        anomaly_metrics(np.array([0, 1]), np.array([0.0, np.nan]))
