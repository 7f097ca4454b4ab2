"""The reports stage: trial outcomes -> ``trials.parquet`` -> ``pareto.parquet`` -> figure -> HTML."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from disentune.reports import schema
from disentune.reports.html import render_index
from disentune.reports.plots import draw_pareto, pareto_plot_data
from disentune.reports.storage import join, read_table, write_bytes, write_table
from disentune.search.outcome import TrialOutcome
from disentune.search.pareto import analyse

OBJECTIVES, DIRECTIONS = ("fid", "mig"), ("min", "max")


def trials_table(outcomes: Sequence[TrialOutcome], *, run_id: str, code_version: str,
                 created_at: dt.datetime | None = None) -> pa.Table:
    """One row per trial (failed ones included, with their reason)."""
    created_at = created_at or dt.datetime.now(dt.timezone.utc)
    rows = []
    for o in outcomes:
        m, p = o.metrics, o.params

        def num(key: str, default: Any = float("nan")) -> Any:
            value = m.get(key, default)
            return default if value is None else value

        rows.append({
            "run_id": run_id, "trial_number": o.number, "trial_id": o.trial_id,
            "variant": p.get("variant"), "lambda_mi": p.get("lambda_mi"),
            "lambda_tc": p.get("lambda_tc"), "lr": p.get("lr"), "latent_dim": p.get("latent_dim"),
            "batch_size": p.get("batch_size"), "seed": p.get("seed"),
            "status": o.status, "error": o.error,
            "fid": float(num("fid")), "mig": float(num("mig")),
            "fid_extractor": m.get("fid_extractor"), "epochs": m.get("epoch"),
            "images_seen": m.get("images_seen"),
            "train_seconds": float(num("train_seconds")), "eval_seconds": float(num("eval_seconds")),
            "startup_seconds": float(num("startup_seconds")),
            "wall_seconds": float(num("time_total_s")),
            "checkpoint_uri": o.checkpoint_uri, "code_version": code_version,
            "created_at": created_at,
        })
    return pa.Table.from_pylist(rows, schema=schema.TRIALS)


def pareto_table(trials: pa.Table, reference: Sequence[float] | None = None) -> pa.Table:
    """Non-domination rank, front membership, hypervolume contribution and knee of every
    successful trial, with the reference point used and the hypervolume after each trial."""
    ok = [r for r in trials.to_pylist() if r["status"] == "ok"]
    ok.sort(key=lambda r: r["trial_number"])
    if not ok:
        return schema.PARETO.empty_table()
    values = np.array([[r["fid"], r["mig"]] for r in ok])
    a = analyse(values, DIRECTIONS, reference)
    return pa.Table.from_pylist([
        {
            "run_id": r["run_id"], "trial_number": r["trial_number"], "trial_id": r["trial_id"],
            "fid": r["fid"], "mig": r["mig"], "rank": int(a.ranks[i]), "on_front": bool(a.ranks[i] == 0),
            "hv_contribution": float(a.contributions[i]), "knee": a.knee == i,
            "hypervolume_so_far": float(a.history[i]),
            "reference_fid": float(a.reference[0]), "reference_mig": float(a.reference[1]),
        }
        for i, r in enumerate(ok)
    ], schema=schema.PARETO)


@dataclass(frozen=True)
class ReportPaths:
    trials: str
    pareto: str
    figure: str
    index: str


def build_report(run_uri: str, *, title: str | None = None,
                 summary: Sequence[tuple[str, str]] = ()) -> ReportPaths:
    """Read ``trials.parquet`` under ``run_uri`` and write the Pareto table, figure and page."""
    paths = ReportPaths(*(join(run_uri, n) for n in ("trials.parquet", "pareto.parquet", "pareto.png", "index.html")))
    trials = read_table(paths.trials)
    pareto = pareto_table(trials)
    write_table(pareto, paths.pareto)
    title = title or f"disentune run {run_uri.rstrip('/').rsplit('/', 1)[-1]}"
    with tempfile.TemporaryDirectory() as tmp:
        png_path = str(Path(tmp) / "pareto.png")
        draw_pareto(pareto_plot_data(trials, pareto, f"{title}: FID vs MIG"), png_path)
        png = Path(png_path).read_bytes()
    write_bytes(paths.figure, png)
    front = {r["trial_id"] for r in pareto.to_pylist() if r["on_front"]}
    hv = f"{pareto['hypervolume_so_far'][-1].as_py():.4g}" if pareto.num_rows else "n/a"
    ref = (
        f"fid={pareto['reference_fid'][0].as_py():.4g}, mig={pareto['reference_mig'][0].as_py():.4g}"
        if pareto.num_rows else "n/a"
    )
    failed = sum(1 for s in trials["status"].to_pylist() if s != "ok")
    page = render_index(
        title=title,
        summary=[*summary, ("trials", f"{trials.num_rows} ({failed} failed)"),
                 ("Pareto front", f"{len(front)} trials"), ("hypervolume", hv),
                 ("reference point", ref)],
        figures=[("Pareto front: FID against MIG", png)],
        trials=trials, front_ids=front,
    )
    write_bytes(paths.index, page.encode("utf-8"))
    return paths
