"""A synthetic run (trials and curves tables) for report tests: no training needed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from disentune.reports import schema


def synthetic_trials(n: int, seed: int = 0, *, hostile: str | None = None) -> pa.Table:
    rng = np.random.default_rng(seed)
    mi, tc = rng.uniform(0, 1, n), rng.uniform(0, 10, n)
    mig = np.clip(0.05 + 0.05 * tc + rng.normal(0, 0.05, n), 0, 1)
    fid = 50 + 30 * tc - 20 * mi + rng.normal(0, 5, n)
    rows = []
    for i in range(n):
        failed = i % 17 == 5
        rows.append({
            "run_id": "synthetic", "trial_number": i, "trial_id": f"t{i:04d}",
            "variant": "beta_tcvae", "lambda_mi": float(mi[i]), "lambda_tc": float(tc[i]), "lr": 1e-3,
            "latent_dim": 10, "batch_size": 64, "seed": 0, "status": "failed" if failed else "ok",
            "error": "loss became nan at epoch 2, batch 7" if failed else None,
            "fid": float("nan") if failed else float(fid[i]), "mig": float("nan") if failed else float(mig[i]),
            "fid_extractor": "factornet-test:000", "epochs": 3, "images_seen": 60000,
            "train_seconds": 40.0, "eval_seconds": 2.0, "startup_seconds": 0.1, "wall_seconds": 43.0,
            "checkpoint_uri": None, "code_version": "test", "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        })
    if hostile is not None:
        rows[0]["trial_id"] = hostile
        rows[0]["error"] = hostile
    return pa.Table.from_pylist(rows, schema=schema.TRIALS)


def synthetic_curves(trials: pa.Table, epochs: int = 3) -> pa.Table:
    rows = [
        {"run_id": "synthetic", "trial_number": r["trial_number"], "trial_id": r["trial_id"],
         "epoch": e, "metric": "loss_total", "value": 100.0 / e}
        for r in trials.to_pylist() for e in range(1, epochs + 1)
    ]
    return pa.Table.from_pylist(rows, schema=schema.CURVES)
