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


LAYERS = ["pixel", "activation:encoder.features.3", "activation:encoder.features.5",
          "activation:discriminator.body.0.features.3", "activation:discriminator.body.0.features.5"]


def test_group_scans_over_several_layers_and_their_panels(finished_run, tmp_path):
    """Several ``activation:<layer>`` scan spaces end to end: each model scans the layers it has,
    the group table holds the three group scans per space, and the report panels read it."""
    import json
    import shutil

    from disentune.anomaly.groups import GROUPS_TABLE, part_name, read_groups
    from disentune.reports.anomaly_panels import CAPTIONS, anomaly_panels
    from disentune.reports.storage import read_table

    run = tmp_path / "layers"
    shutil.copytree(finished_run, run, ignore=shutil.ignore_patterns("anomaly_*", "figures"))
    stored = json.loads((run / "experiment.json").read_text())
    stored["experiment"].setdefault("anomaly", {})["scan_spaces"] = LAYERS
    (run / "experiment.json").write_text(json.dumps(stored))
    benchmarks = ["creative"]  # the study's benchmark: typical against creative decodings
    result = detect_run(str(run), detectors=["subset_scan"], benchmarks=benchmarks, num_cpus=2)
    assert not result.failed and len(result.done) == 2 * len(benchmarks), result.summary()

    metrics, scores = _tables(run)
    groups = read_groups(str(run)).to_pandas()
    spaces = {t: set(m["feature_space"]) for t, m in metrics.groupby("trial_id")}
    assert sorted(map(sorted, spaces.values())) == [
        ["activation:discriminator.body.0.features.3", "activation:discriminator.body.0.features.5", "pixel"],
        ["activation:encoder.features.3", "activation:encoder.features.5", "pixel"]]
    assert len(groups) == 2 * len(benchmarks) * 3 * 3  # models x benchmarks x spaces x groups
    for (tid, bench, space), g in groups.groupby(["trial_id", "benchmark", "feature_space"]):
        g = g.set_index("group")
        assert sorted(g.index) == ["all", "anomalous", "normal"]
        sample = scores[(scores.trial_id == tid) & (scores.benchmark == bench) & (scores.feature_space == space)]
        labels = sample.set_index("sample")["label"]
        assert list(g["n_samples"][["normal", "anomalous", "all"]]) == [100, 100, 200]
        # 32 x 32 pixels; the third convolution's 32 x 8 x 8 units, the fourth's 64 x 4 x 4
        assert set(g["n_nodes"]) == {2048 if space.endswith("features.3") else 1024}
        for name, label in (("normal", 0), ("anomalous", 1)):
            row = g.loc[name]
            assert (labels.loc[list(row["samples"])] == label).all()
            # node frequencies hold every per-sample subset of the group: sizes add up
            assert np.sum(row["node_counts"]) == sample[sample.label == label]["subset_size"].sum()
        every = g.loc["all"]
        assert every["selected_anomalous"] == labels.loc[list(every["samples"])].sum()
        assert (g["score"] >= 0).all() and g["alpha"].between(0, 0.5).all()
        assert np.array_equal(np.add(g.loc["normal", "node_counts"], g.loc["anomalous", "node_counts"]),
                              every["node_counts"])

    # everything is done now; a subset scan whose group scans are missing is done again
    jobs, skipped, _ = plan(str(run), detectors=["subset_scan"], benchmarks=benchmarks)
    assert not jobs and skipped == 2
    key = f"{metrics.trial_id.iloc[0]}/subset_scan/creative"
    (run / GROUPS_TABLE / part_name(key)).unlink()
    jobs, _, _ = plan(str(run), detectors=["subset_scan"], benchmarks=benchmarks)
    assert [j.key for j in jobs] == [key]

    trials = read_table(str(run / "trials.parquet"))
    figures = anomaly_panels(str(run), trials, (("fid", "min"), ("mig", "max")))
    assert [c for c, _ in figures] == [CAPTIONS["anomaly_subset_sizes"], CAPTIONS["anomaly_activation_vs_pixel"],
                                       CAPTIONS["anomaly_node_overlap"],
                                       "Anomaly AUROC per detector against fid and mig", CAPTIONS["anomaly_layers"]]
    layers = read_table(str(run / "figures" / "anomaly_layers.parquet")).to_pandas()
    assert len(layers) == 2 * len(benchmarks) * 3 and set(layers["order"]) == {0, 1, 2}
    assert layers["auroc"].between(0, 1).all()
    # the deleted part held one model's group scans: its three spaces have no node count or precision
    assert layers["n_nodes"].isna().sum() == layers["group_precision"].isna().sum() == 3
    assert layers["group_recall"].dropna().between(0, 1).all() and len(layers["group_recall"].dropna()) == 3
    overlap = read_table(str(run / "figures" / "anomaly_node_overlap.parquet")).to_pandas()
    assert len(overlap) == 2 * len(benchmarks) * 3 - 3  # the deleted part held one model's three spaces
    assert overlap["jaccard_weighted"].between(0, 1).all()
    pixel_vs = read_table(str(run / "figures" / "anomaly_activation_vs_pixel.parquet")).to_pandas()
    assert len(pixel_vs) == 2 * len(benchmarks) * 2
