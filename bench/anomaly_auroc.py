"""Anomaly detection of a finished run's Pareto-front models, and the creativity study's findings.

    python bench/anomaly_auroc.py RUN [--benchmarks a,b,...] [--detectors a,b,...] [--all-trials]
                                      [--no-detect] [--threshold 0.5]

Runs ``disentune anomaly RUN --front`` (idempotent: finished tasks are kept; ``--no-detect`` only
reads what is there; ``--all-trials`` every trial, not just the front), then prints, from the same
data objects the report's anomaly panels draw (``disentune.reports.anomaly_panel_data``):

1. detector (and feature space) x benchmark AUROC per trial (digits averaged over the one-class runs);
2. subset scanning: activation space against pixel space, per trial, benchmark and layer;
3. per-sample subset sizes of normal against anomalous samples, per benchmark and space;
4. overlap (Jaccard) of the nodes highlighted for anomalous and for normal samples, per layer;
5. AUROC per detector (mean over benchmarks) next to the run's first two objectives;
6. AUROC per scanned layer, with the all-sample group scan's precision and recall.

Set ``anomaly.scan_spaces`` in the run's search space (e.g. ``[pixel, activation:encoder.features.3,
activation:encoder.features.5]``) to compare layers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from disentune.anomaly.runner import detect_run, front_trials  # noqa: E402
from disentune.reports.anomaly_panel_data import (  # noqa: E402
    activation_pixel_data,
    detector_objectives_data,
    layer_data,
    node_overlap_data,
    subset_size_data,
)
from disentune.reports.anomaly_panels import run_tables  # noqa: E402
from disentune.reports.storage import read_table  # noqa: E402
from disentune.reports.tables import run_objectives  # noqa: E402
from disentune.storage import exists, join, read_bytes  # noqa: E402

DEFAULT = ["local_defects@0.05", "local_defects@0.1", "local_defects@0.2", "creative",
           *(f"digits_oneclass@{d}" for d in range(10))]
DIGITS = "digits (mean of 10)"


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "benchmark" in frame:
        frame["benchmark"] = frame["benchmark"].str.replace(r"digits_oneclass@\d", DIGITS, regex=True)
    if "feature_space" in frame:
        frame["feature_space"] = frame["feature_space"].str.replace("activation:", "", regex=False)
    return frame


def _show(title: str, frame: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(frame.round(3).to_string() if len(frame) else "  (none)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", default="reports/quickstart", metavar="RUN")
    parser.add_argument("--benchmarks", default=",".join(DEFAULT))
    parser.add_argument("--detectors", default=None, help="default: the run's anomaly.detectors")
    parser.add_argument("--all-trials", action="store_true", help="every trial, not just the Pareto front")
    parser.add_argument("--no-detect", action="store_true", help="only print the tables already written")
    parser.add_argument("--threshold", type=float, default=0.5, help="node-frequency threshold of the overlap")
    args = parser.parse_args()
    if not args.no_detect:
        began = time.perf_counter()
        result = detect_run(args.run, benchmarks=args.benchmarks.split(","), front_only=not args.all_trials,
                            detectors=args.detectors.split(",") if args.detectors else None)
        print(result.summary().splitlines()[0], f"({time.perf_counter() - began:.0f} s wall)")
        for line in result.summary().splitlines()[1:-1]:
            print(line)
    trials = read_table(join(args.run, "trials.parquet"))
    if not args.all_trials:
        front = pa.array(sorted(front_trials(args.run)), type=pa.int64())
        trials = trials.filter(pc.is_in(trials["trial_number"], value_set=front))
    stored = join(args.run, "experiment.json")
    config = json.loads(read_bytes(stored)) if exists(stored) else {}
    objectives = run_objectives(config)
    metrics, scores, groups = run_tables(args.run)
    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 40)
    which = "every trial" if args.all_trials else "the Pareto front"
    print(f"\n{args.run}: {trials.num_rows} trials of {which}; objectives {', '.join(n for n, _ in objectives)}")

    t = {r["trial_number"]: r for r in trials.to_pylist()}
    auroc = _frame([r for r in metrics.to_pylist() if r["metric"] == "auroc" and r["trial_number"] in t])
    if len(auroc):
        auroc["detector"] = auroc["detector"] + " / " + auroc["feature_space"]
        for number, group in auroc.groupby("trial_number"):
            row = t[number]
            named = ", ".join(f"{n} {row[n]:.4g}" for n, _ in objectives)
            print(f"\n#{number} {row['variant']} lambda_mi={row['lambda_mi']:.3g} lambda_tc={row['lambda_tc']:.3g} "
                  f"({named}): AUROC (mean over replicates)")
            print(group.pivot_table(index="detector", columns="benchmark", values="value", aggfunc="mean")
                  .round(3).to_string())

    pixel = _frame(activation_pixel_data(metrics, trials).rows)
    if len(pixel):
        pixel["activation_better"] = pixel["auroc_activation"] > pixel["auroc_pixel"]
        pixel = pixel.groupby(["trial_number", "benchmark", "feature_space"], as_index=False).agg(
            auroc_pixel=("auroc_pixel", "mean"), auroc_activation=("auroc_activation", "mean"),
            activation_better=("activation_better", "mean"))
    _show("subset scanning AUROC: activation space against pixel space (activation_better: share of rows)", pixel)

    sizes = _frame(subset_size_data(scores, trials).tables["anomaly_subset_size_summary"])
    _show("per-sample subset sizes (nodes): normal against anomalous; size_auroc = AUROC of the size as the score",
          sizes)

    overlap = _frame(node_overlap_data(groups, trials, threshold=args.threshold).rows)
    if len(overlap):
        overlap = overlap.groupby(["benchmark", "feature_space"], as_index=False).agg(
            models=("trial_number", "size"), n_nodes=("n_nodes", "first"),
            nodes_normal=("nodes_normal", "mean"), nodes_anomalous=("nodes_anomalous", "mean"),
            jaccard_group=("jaccard_group", "mean"), jaccard_frequency=("jaccard_frequency", "mean"),
            jaccard_weighted=("jaccard_weighted", "mean"))
    _show(f"node overlap, anomalous against normal samples (group-scan subsets; nodes in >= {args.threshold:g} "
          "of the samples' subsets; weighted), mean over models", overlap)

    detectors = _frame(detector_objectives_data(metrics, trials, objectives).rows)
    if len(detectors):
        detectors["series"] = detectors["detector"] + " / " + detectors["feature_space"]
        table = detectors.pivot_table(index="trial_number", columns="series", values="auroc")
        for column, name in (("x", objectives[0][0]), ("y", objectives[1][0])):
            table.insert(0, name, detectors.groupby("trial_number")[column].first())
        detectors = table
    _show("AUROC per detector (mean over benchmarks) against the objectives", detectors)

    layers = _frame(layer_data(metrics, groups, trials).rows)
    if len(layers):
        layers = layers.groupby(["benchmark", "order", "feature_space"], as_index=False).agg(
            trials=("trial_number", "nunique"), n_nodes=("n_nodes", "first"), auroc=("auroc", "mean"),
            group_precision=("group_precision", "mean"), group_recall=("group_recall", "mean"))
    _show("AUROC per scanned layer (mean over trials); all-sample group scan: precision and recall", layers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
