"""AUROC of every detector on every benchmark for a finished run's Pareto-front models.

    python bench/anomaly_auroc.py [RUN] [--benchmarks a,b,...]

Runs ``disentune anomaly RUN --front`` (idempotent: finished tasks are kept), then prints
(1) detector x benchmark AUROC per front trial (digits averaged over the ten one-class runs) and
(2) activation against pixel space for subset scanning on the ``creative`` benchmark.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pandas as pd  # noqa: E402

from disentune.anomaly.runner import METRICS_TABLE, detect_run, front_trial_ids  # noqa: E402
from disentune.reports import schema  # noqa: E402
from disentune.reports.storage import read_dataset, read_table  # noqa: E402
from disentune.storage import join  # noqa: E402

DEFAULT = ["local_defects@0.05", "local_defects@0.1", "local_defects@0.2", "creative",
           *(f"digits_oneclass@{d}" for d in range(10))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", nargs="?", default="reports/quickstart")
    parser.add_argument("--benchmarks", default=",".join(DEFAULT))
    args = parser.parse_args()
    began = time.perf_counter()
    result = detect_run(args.run, benchmarks=args.benchmarks.split(","), front_only=True)
    print(result.summary().splitlines()[0], f"({time.perf_counter() - began:.0f} s wall)")
    front = front_trial_ids(args.run)
    trials = read_table(join(args.run, "trials.parquet")).to_pandas().set_index("trial_id")
    table = read_dataset(join(args.run, METRICS_TABLE), schema.ANOMALY_METRICS).to_pandas()
    table = table[table["trial_id"].isin(front) & (table["metric"] == "auroc")]
    table["benchmark"] = table["benchmark"].str.replace(r"digits_oneclass@\d", "digits (mean of 10)", regex=True)
    table["detector"] = table["detector"] + " / " + table["feature_space"].str.replace(
        r"activation:.*", "activation", regex=True)
    pd.set_option("display.width", 200)
    for tid, group in table.groupby("trial_id"):
        t = trials.loc[tid]
        print(f"\n#{t.trial_number} {t.variant} lambda_mi={t.lambda_mi:.3g} lambda_tc={t.lambda_tc:.3g} "
              f"(fid {t.fid:.4g}, mig {t.mig:.3f}): AUROC")
        print(group.pivot_table(index="detector", columns="benchmark", values="value", aggfunc="mean")
              .round(3).to_string())
    creative = table[(table["benchmark"] == "creative") & table["detector"].str.startswith("subset_scan")]
    print("\nsubset scanning on creative: activation vs pixel space (AUROC)")
    print(creative.pivot_table(index="trial_id", columns="detector", values="value").round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
