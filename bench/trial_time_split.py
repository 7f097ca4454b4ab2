"""Where a sweep's trial time goes: Ray Train start-up vs training vs objectives, per trial.

The overhead is every second of a trial's wall time (Tune's ``time_total_s``) not spent in
training steps or in computing the objectives: start-up, imports, data loading, building the
model, checkpoints and reports. Issue #8's target: at most 5 % of a quickstart trial.

    python bench/trial_time_split.py reports/quickstart

Reads ``trials.parquet`` of a finished run and prints one row per trial plus the totals.
"""

from __future__ import annotations

import sys

import pyarrow.parquet as pq


def main(run_dir: str) -> None:
    t = pq.read_table(f"{run_dir.rstrip('/')}/trials.parquet").to_pandas().sort_values("trial_number")
    rest = t["wall_seconds"] - t["startup_seconds"] - t["train_seconds"] - t["eval_seconds"]
    t = t.assign(other_seconds=rest, startup_share=t["startup_seconds"] / t["wall_seconds"])
    cols = ["trial_number", "status", "wall_seconds", "startup_seconds", "train_seconds",
            "eval_seconds", "other_seconds", "startup_share", "images_seen"]
    print(t[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    total = t[["wall_seconds", "startup_seconds", "train_seconds", "eval_seconds", "other_seconds"]].sum()
    print("\ntotals (s):", ", ".join(f"{k.removesuffix('_seconds')}={v:.1f}" for k, v in total.items()))
    print(f"start-up share of trial wall time: {total['startup_seconds'] / total['wall_seconds']:.1%}")
    overhead = (total["startup_seconds"] + total["other_seconds"]) / total["wall_seconds"]
    print(f"overhead (wall - training - objectives) share: {overhead:.1%} (target <= 5 %)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "reports/quickstart")
