"""Anomaly detection over a finished tiny sweep: one Ray task per (trial, detector, benchmark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from disentune.anomaly.runner import METRICS_TABLE, SCORES_TABLE, detect_run, plan
from disentune.anomaly.scoring import anomaly_metrics
from disentune.cli import main
from disentune.reports import schema
from disentune.reports.storage import read_dataset

pytestmark = pytest.mark.integration

BENCHMARKS = ["heldout_shape", "local_defects@0.2", "creative", "digits_oneclass@0"]


def _tables(run: Path):
    return (read_dataset(str(run / METRICS_TABLE), schema.ANOMALY_METRICS).to_pandas(),
            read_dataset(str(run / SCORES_TABLE), schema.ANOMALY_SCORES).to_pandas())


def test_every_detector_scores_every_benchmark_once(finished_run):
    result = detect_run(str(finished_run), benchmarks=BENCHMARKS, num_cpus=2)
    assert not result.failed, result.summary()
    # each model gets the 4 detectors that apply to all, plus neg_elbo (VAE) or discriminator (GAN)
    assert len(result.done) == 2 * 5 * len(BENCHMARKS) and result.not_applicable == 2 * len(BENCHMARKS)
    metrics, scores = _tables(finished_run)
    assert set(metrics["metric"]) == {"auroc", "aupr", "fpr_at_95tpr", "f1_at_contamination"}
    assert set(metrics["benchmark"]) == set(BENCHMARKS)
    spaces = set(metrics["feature_space"])
    assert {"latent", "pixel", "model"} <= spaces and any(s.startswith("activation:") for s in spaces)
    keys = ["trial_id", "detector", "feature_space", "benchmark", "metric"]
    assert (metrics.groupby(keys).size() == 1).all()
    assert metrics["value"].between(0, 1).all()
    vae = metrics[metrics["detector"] == "neg_elbo"]["trial_id"].unique()
    gan = metrics[metrics["detector"] == "discriminator"]["trial_id"].unique()
    assert len(vae) == 1 and len(gan) == 1 and vae[0] != gan[0]

    # the per-sample scores reproduce every stored metric
    for (tid, det, space, bench), group in scores.groupby(["trial_id", "detector", "feature_space", "benchmark"]):
        stored = metrics[(metrics.trial_id == tid) & (metrics.detector == det) & (metrics.feature_space == space)
                         & (metrics.benchmark == bench)].set_index("metric")["value"]
        again = anomaly_metrics(group["label"].to_numpy(), group["score"].to_numpy())
        for name, value in again.items():
            assert np.isclose(stored[name], value), (tid, det, space, bench, name)
        if det == "subset_scan":
            assert group["subset_size"].notna().all() and group["alpha"].between(0, 1).all()

    # pixel-space scanning sees added pixels (noise, patches) whatever the model learned, though not
    # cleared ones (a missing part looks like a smaller sprite): clearly above chance (0.5 +- 0.04)
    defects = metrics[(metrics.detector == "subset_scan") & (metrics.feature_space == "pixel")
                      & (metrics.benchmark == "local_defects@0.2") & (metrics.metric == "auroc")]
    assert len(defects) == 2 and (defects["value"] > 0.6).all(), defects
    assert defects["value"].nunique() == 1  # the same split for both trials: pixels ignore the model

    # a second run has nothing left to do and writes nothing
    parts = sorted(p.name for p in (finished_run / METRICS_TABLE).iterdir())
    jobs, skipped, _ = plan(str(finished_run), benchmarks=BENCHMARKS)
    assert not jobs and skipped == 2 * 5 * len(BENCHMARKS)
    assert sorted(p.name for p in (finished_run / METRICS_TABLE).iterdir()) == parts

    # an interrupted run (a task's metrics never written) is completed without duplicates
    victim = sorted((finished_run / METRICS_TABLE).iterdir())[0]
    victim.unlink()
    again = detect_run(str(finished_run), benchmarks=BENCHMARKS, num_cpus=2)
    assert len(again.done) == 1 and not again.failed
    m2, s2 = _tables(finished_run)
    assert len(m2) == len(metrics) and len(s2) == len(scores)


def test_cli_refuses_unknown_detector_and_benchmark(finished_run, capsys):
    assert main(["anomaly", str(finished_run), "--detectors", "mahalanobis,oracle"]) == 2
    assert "oracle" in capsys.readouterr().err
    assert main(["anomaly", str(finished_run), "--benchmarks", "local_defects@7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "local_defects@7" in err and "\n" not in err
