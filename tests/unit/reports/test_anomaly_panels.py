"""The anomaly report panels' data objects against hand computations on a small synthetic run."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from disentune.anomaly.groups import GROUPS_TABLE, read_groups
from disentune.anomaly.runner import METRICS_TABLE, SCORES_TABLE
from disentune.reports import schema
from disentune.reports.anomaly_panel_data import (
    activation_pixel_data,
    detector_objectives_data,
    layer_data,
    node_overlap_data,
    space_order,
    subset_size_data,
)
from disentune.reports.anomaly_panels import CAPTIONS, anomaly_panels, panel_data, run_tables
from disentune.reports.anomaly_schema import ANOMALY_GROUPS
from disentune.reports.storage import append_table, read_table

from .synthetic import synthetic_trials

F3, F5 = "activation:encoder.features.3", "activation:encoder.features.5"
CREATIVE, DEFECTS = "creative", "local_defects@0.1"


def _ids(number, rep):
    return f"t{number:04d}" if rep == 0 else f"t{number:04d}_r{rep}"


def _metric(number, rep, detector, space, bench, value, metric="auroc"):
    return {"trial_id": _ids(number, rep), "trial_number": number, "replicate": rep, "detector": detector,
            "feature_space": space, "benchmark": bench, "metric": metric, "value": value, "n_normal": 2,
            "n_anomalous": 2, "seed": 1, "fit_seconds": 0.0, "score_seconds": 0.0}


METRICS = [
    # trial 0 (one replicate)
    _metric(0, 0, "subset_scan", "pixel", CREATIVE, 0.6), _metric(0, 0, "subset_scan", F3, CREATIVE, 0.8),
    _metric(0, 0, "subset_scan", F5, CREATIVE, 0.7), _metric(0, 0, "subset_scan", "pixel", DEFECTS, 0.9),
    _metric(0, 0, "subset_scan", F3, DEFECTS, 0.5), _metric(0, 0, "knn", "latent", CREATIVE, 0.55),
    _metric(0, 0, "knn", "latent", DEFECTS, 0.65), _metric(0, 0, "reconstruction", "model", CREATIVE, 0.3),
    _metric(0, 0, "subset_scan", "pixel", CREATIVE, 0.01, metric="aupr"),  # not an AUROC: ignored
    # trial 1 (two replicates; the second alone has the deeper layer)
    _metric(1, 0, "subset_scan", "pixel", CREATIVE, 0.5), _metric(1, 0, "subset_scan", F3, CREATIVE, 0.9),
    _metric(1, 1, "subset_scan", "pixel", CREATIVE, 0.7), _metric(1, 1, "subset_scan", F3, CREATIVE, 0.7),
    _metric(1, 1, "subset_scan", F5, CREATIVE, 0.6),
    _metric(1, 0, "knn", "latent", CREATIVE, 0.4), _metric(1, 1, "knn", "latent", CREATIVE, 0.6),
    # trial 5 failed (synthetic_trials marks it so): never counted
    _metric(5, 0, "subset_scan", "pixel", CREATIVE, 0.1), _metric(5, 0, "subset_scan", F3, CREATIVE, 0.2),
]


def _scores():
    rows = []

    def add(number, rep, space, labels, sizes, detector="subset_scan"):
        for i, (label, size) in enumerate(zip(labels, sizes)):
            rows.append({"trial_id": _ids(number, rep), "trial_number": number, "replicate": rep,
                         "detector": detector, "feature_space": space, "benchmark": CREATIVE, "sample": i,
                         "label": label, "score": float(i), "subset_size": size,
                         "alpha": None if size is None else 0.1, "seed": 1})

    add(0, 0, "pixel", [0, 0, 1, 1], [1, 2, 3, 2])
    add(1, 0, "pixel", [0, 0, 1, 1], [2, 2, 1, 4])
    add(0, 0, F3, [0, 1], [5, 6])
    add(0, 0, "latent", [0, 1], [None, None], detector="knn")
    add(5, 0, "pixel", [0, 1], [9, 9])
    return rows


def _group(number, rep, space, group, n_samples, nodes, counts, samples=(), hits=0, bench=CREATIVE):
    return {"trial_id": _ids(number, rep), "trial_number": number, "replicate": rep, "detector": "subset_scan",
            "feature_space": space, "benchmark": bench, "group": group, "n_samples": n_samples,
            "n_nodes": len(counts), "score": 1.0, "alpha": 0.1, "samples": list(samples), "nodes": list(nodes),
            "restart_scores": [1.0], "node_counts": list(counts), "selected_anomalous": hits,
            "statistic": "berk_jones", "alpha_max": 0.5, "restarts": 1, "max_alphas": 50, "max_iter": 50,
            "seed": 1, "scan_seconds": 0.0}


GROUPS = [
    _group(0, 0, F3, "normal", 4, [0, 1, 2], [4, 2, 2, 0, 0, 0]),
    _group(0, 0, F3, "anomalous", 2, [2, 3, 4], [0, 1, 2, 2, 1, 0]),
    _group(0, 0, F3, "all", 6, [2, 3], [4, 3, 4, 2, 1, 0], samples=[2, 3, 5], hits=2),
    # nothing highlighted anywhere: every Jaccard is undefined
    _group(0, 0, F5, "normal", 3, [], [0, 0, 0, 0]), _group(0, 0, F5, "anomalous", 3, [], [0, 0, 0, 0]),
    _group(0, 0, F5, "all", 6, [], [0, 0, 0, 0]),
    # a benchmark without anomalous test samples: no overlap row
    _group(0, 0, F3, "normal", 4, [1], [1, 1, 0, 0, 0, 0], bench=DEFECTS),
    _group(0, 0, F3, "anomalous", 0, [], [0] * 6, bench=DEFECTS),
    _group(5, 0, F3, "normal", 4, [0], [1, 0, 0, 0, 0, 0]), _group(5, 0, F3, "anomalous", 4, [0], [1, 0, 0, 0, 0, 0]),
]


@pytest.fixture()
def run(tmp_path):
    append_table(pa.Table.from_pylist(METRICS, schema=schema.ANOMALY_METRICS), str(tmp_path / METRICS_TABLE))
    append_table(pa.Table.from_pylist(_scores(), schema=schema.ANOMALY_SCORES), str(tmp_path / SCORES_TABLE))
    append_table(pa.Table.from_pylist(GROUPS, schema=ANOMALY_GROUPS), str(tmp_path / GROUPS_TABLE))
    return tmp_path


@pytest.fixture()
def trials():
    table = synthetic_trials(6)
    assert table["status"].to_pylist()[5] == "failed"
    return table


def _same(rows, expected):
    assert len(rows) == len(expected), (rows, expected)
    for got, want in zip(rows, expected):
        assert set(want) <= set(got), (got, want)
        for key, value in want.items():
            if isinstance(value, float):
                assert (math.isnan(value) and math.isnan(got[key])) or math.isclose(got[key], value), (key, got, want)
            else:
                assert got[key] == value, (key, got, want)


def test_feature_spaces_are_ordered_pixel_first_then_by_depth():
    spaces = ["model", "activation:decoder.body.1", "activation:encoder.features.10", "latent",
              "activation:encoder.features.5", "pixel"]
    assert sorted(spaces, key=space_order) == ["pixel", "latent", "activation:encoder.features.5",
                                               "activation:encoder.features.10", "activation:decoder.body.1", "model"]


def test_subset_size_distributions(run, trials):
    _, scores, _ = run_tables(str(run))
    data = subset_size_data(scores, trials)
    counts = [(r["trial_number"], r["replicate"], r["benchmark"], r["feature_space"], r["label"], r["subset_size"],
               r["count"]) for r in data.rows]
    assert counts == [
        (0, 0, CREATIVE, "pixel", 0, 1, 1), (0, 0, CREATIVE, "pixel", 0, 2, 1), (0, 0, CREATIVE, "pixel", 1, 2, 1),
        (0, 0, CREATIVE, "pixel", 1, 3, 1), (1, 0, CREATIVE, "pixel", 0, 2, 2), (1, 0, CREATIVE, "pixel", 1, 1, 1),
        (1, 0, CREATIVE, "pixel", 1, 4, 1), (0, 0, CREATIVE, F3, 0, 5, 1), (0, 0, CREATIVE, F3, 1, 6, 1)]
    # size AUROC: trial 0 (3 > 1, 3 > 2, 2 > 1, 2 = 2) = 3.5 / 4; trial 1 (1 < 2 twice, 4 > 2 twice) = 2 / 4
    _same(data.tables["anomaly_subset_size_summary"], [
        {"benchmark": CREATIVE, "feature_space": "pixel", "models": 2, "n_normal": 4, "n_anomalous": 4,
         "mean_normal": 1.75, "mean_anomalous": 2.5, "median_normal": 2.0, "median_anomalous": 2.5,
         "size_auroc": (0.875 + 0.5) / 2},
        {"benchmark": CREATIVE, "feature_space": F3, "models": 1, "n_normal": 1, "n_anomalous": 1,
         "mean_normal": 5.0, "mean_anomalous": 6.0, "median_normal": 5.0, "median_anomalous": 6.0,
         "size_auroc": 1.0}])


def test_activation_against_pixel_auroc(run, trials):
    metrics, _, _ = run_tables(str(run))
    rows = activation_pixel_data(metrics, trials).rows
    _same(rows, [
        {"trial_number": 0, "benchmark": CREATIVE, "feature_space": F3, "auroc_pixel": 0.6, "auroc_activation": 0.8,
         "replicates": 1},
        {"trial_number": 0, "benchmark": CREATIVE, "feature_space": F5, "auroc_pixel": 0.6, "auroc_activation": 0.7,
         "replicates": 1},
        {"trial_number": 0, "benchmark": DEFECTS, "feature_space": F3, "auroc_pixel": 0.9, "auroc_activation": 0.5,
         "replicates": 1},
        {"trial_number": 1, "benchmark": CREATIVE, "feature_space": F3, "auroc_pixel": 0.6, "auroc_activation": 0.8,
         "replicates": 2},  # (0.5 + 0.7) / 2 against (0.9 + 0.7) / 2
        {"trial_number": 1, "benchmark": CREATIVE, "feature_space": F5, "auroc_pixel": 0.7, "auroc_activation": 0.6,
         "replicates": 1}])  # only replicate 1 scanned the layer: its own pixel AUROC


def test_node_overlap_of_normal_and_anomalous_groups(run, trials):
    groups = read_groups(str(run))
    rows = node_overlap_data(groups, trials).rows
    # group scans: {0,1,2} and {2,3,4} share 1 of 5 nodes; frequencies f_n = (1, .5, .5, 0, 0, 0),
    # f_a = (0, .5, 1, 1, .5, 0): nodes >= 0.5 {0,1,2} and {1,2,3,4} share 2 of 5; weighted 1 / 4
    _same(rows, [
        {"trial_number": 0, "replicate": 0, "benchmark": CREATIVE, "feature_space": F3, "n_nodes": 6,
         "nodes_normal": 3, "nodes_anomalous": 3, "jaccard_group": 0.2, "frequent_normal": 3,
         "frequent_anomalous": 4, "jaccard_frequency": 0.4, "jaccard_weighted": 0.25, "threshold": 0.5},
        {"trial_number": 0, "replicate": 0, "benchmark": CREATIVE, "feature_space": F5, "n_nodes": 4,
         "nodes_normal": 0, "nodes_anomalous": 0, "jaccard_group": float("nan"), "frequent_normal": 0,
         "frequent_anomalous": 0, "jaccard_frequency": float("nan"), "jaccard_weighted": float("nan")}])
    # a stricter threshold: f >= 1 keeps {0} and {2, 3}: no overlap
    strict = node_overlap_data(groups, trials, threshold=1.0).rows[0]
    assert (strict["frequent_normal"], strict["frequent_anomalous"], strict["jaccard_frequency"]) == (1, 2, 0.0)
    assert strict["jaccard_group"] == 0.2 and strict["threshold"] == 1.0


def test_auroc_per_detector_against_the_objectives(run, trials):
    metrics, _, _ = run_tables(str(run))
    data = detector_objectives_data(metrics, trials, (("mig", "max"), ("fid", "min")))
    assert data.axes == (("mig", "max"), ("fid", "min"))
    t = {r["trial_number"]: r for r in trials.to_pylist()}

    def row(number, detector, space, auroc, benchmarks):
        return {"trial_number": number, "detector": detector, "feature_space": space, "auroc": auroc,
                "benchmarks": benchmarks, "x_name": "mig", "x": t[number]["mig"], "y_name": "fid",
                "y": t[number]["fid"]}

    _same(data.rows, [
        row(0, "knn", "latent", 0.6, 2), row(1, "knn", "latent", 0.5, 1),  # (0.55 + 0.65) / 2; (0.4 + 0.6) / 2
        row(0, "reconstruction", "model", 0.3, 1),
        row(0, "subset_scan", "pixel", 0.75, 2), row(1, "subset_scan", "pixel", 0.6, 1),
        row(0, "subset_scan", F3, 0.65, 2), row(1, "subset_scan", F3, 0.8, 1),
        row(0, "subset_scan", F5, 0.7, 1), row(1, "subset_scan", F5, 0.6, 1)])


def test_auroc_per_scanned_layer(run, trials):
    metrics, _, groups = run_tables(str(run))
    nan = float("nan")

    def row(bench, space, order, number, auroc, replicates=1, nodes=None, precision=nan, recall=nan):
        return {"trial_number": number, "benchmark": bench, "feature_space": space, "order": order, "n_nodes": nodes,
                "auroc": auroc, "replicates": replicates, "group_precision": precision, "group_recall": recall}

    _same(layer_data(metrics, groups, trials).rows, [
        row(CREATIVE, "pixel", 0, 0, 0.6), row(CREATIVE, "pixel", 0, 1, 0.6, 2),
        row(CREATIVE, F3, 1, 0, 0.8, nodes=6, precision=2 / 3, recall=1.0), row(CREATIVE, F3, 1, 1, 0.8, 2),
        row(CREATIVE, F5, 2, 0, 0.7, nodes=4, precision=nan, recall=0.0), row(CREATIVE, F5, 2, 1, 0.6),
        row(DEFECTS, "pixel", 0, 0, 0.9), row(DEFECTS, F3, 1, 0, 0.5, nodes=6)])


def test_anomaly_panels_draw_and_store_every_data_object(run, trials):
    objectives = (("fid", "min"), ("mig", "max"))
    figures = anomaly_panels(str(run), trials, objectives)
    assert [c for c, _ in figures] == [
        CAPTIONS["anomaly_subset_sizes"], CAPTIONS["anomaly_activation_vs_pixel"], CAPTIONS["anomaly_node_overlap"],
        "Anomaly AUROC per detector against fid and mig", CAPTIONS["anomaly_layers"]]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for _, png in figures)
    expected = panel_data(*run_tables(str(run)), trials, objectives)
    stored = {}
    for data in expected:
        for name, table in data.arrow().items():
            back = read_table(str(run / "figures" / f"{name}.parquet"))
            assert back.schema.metadata[b"disentune.table"] == name.encode()
            _same(back.to_pylist(), table.to_pylist())
            stored[name] = back.num_rows
        assert (run / "figures" / f"{data.key}.png").read_bytes()[:4] == b"\x89PNG"
    assert stored == {"anomaly_subset_sizes": 9, "anomaly_subset_size_summary": 2, "anomaly_activation_vs_pixel": 5,
                      "anomaly_node_overlap": 2, "anomaly_detector_objectives": 9, "anomaly_layers": 8}


def test_panels_without_subset_scanning_or_without_results(tmp_path, trials):
    assert anomaly_panels(str(tmp_path), trials) == []
    knn = [m for m in METRICS if m["detector"] == "knn"]
    append_table(pa.Table.from_pylist(knn, schema=schema.ANOMALY_METRICS), str(tmp_path / METRICS_TABLE))
    figures = anomaly_panels(str(tmp_path), trials)
    assert [c for c, _ in figures] == ["Anomaly AUROC per detector against fid and mig"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "anomaly_detector_objectives.parquet", "anomaly_detector_objectives.png"]
    assert np.isclose(read_table(str(tmp_path / "figures" / "anomaly_detector_objectives.parquet"))["auroc"]
                      .to_pylist(), [0.6, 0.5]).all()


def test_layer_order_is_the_depth_within_each_trial(trials):
    gan = "activation:discriminator.body.0.features.5"
    metrics = pa.Table.from_pylist([
        _metric(0, 0, "subset_scan", "pixel", CREATIVE, 0.6), _metric(0, 0, "subset_scan", F3, CREATIVE, 0.7),
        _metric(0, 0, "subset_scan", F5, CREATIVE, 0.8),
        _metric(2, 0, "subset_scan", "pixel", CREATIVE, 0.5), _metric(2, 0, "subset_scan", gan, CREATIVE, 0.9),
    ], schema=schema.ANOMALY_METRICS)
    rows = layer_data(metrics, None, trials).rows
    assert [(r["trial_number"], r["feature_space"], r["order"]) for r in rows] == [
        (0, "pixel", 0), (2, "pixel", 0), (0, F3, 1), (2, gan, 1), (0, F5, 2)]
    assert all(r["n_nodes"] is None and math.isnan(r["group_precision"]) for r in rows)
