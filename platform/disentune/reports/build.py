"""The reports stage: trial outcomes -> Parquet tables -> Pareto analysis -> figures -> HTML.

:func:`build_report` reads everything from the run's URI (local or s3://), so a report can be
rebuilt at any time, e.g. after anomaly results are added.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from disentune.pareto import analyse
from disentune.reports import schema
from disentune.reports.html import ModelSection, render_index
from disentune.reports.interactive import interactive_pareto_data
from disentune.reports.plots import (
    anomaly_data,
    curves_data,
    draw_anomaly,
    draw_curves,
    draw_heatmaps,
    draw_hypervolume,
    draw_pareto,
    heatmap_data,
    hypervolume_data,
    pareto_plot_data,
    trial_label,
)
from disentune.reports.storage import read_dataset, read_table, write_table
from disentune.search.outcome import TrialOutcome
from disentune.storage import exists, join, read_bytes, write_bytes

OBJECTIVES, DIRECTIONS = ("fid", "mig"), ("min", "max")


def trials_table(outcomes: Sequence[TrialOutcome], *, run_id: str, code_version: str,
                 created_at: dt.datetime | None = None) -> pa.Table:
    """One row per trial (failed ones included, with their reason)."""
    created_at = created_at or dt.datetime.now(dt.timezone.utc)
    rows = []
    for o in outcomes:
        m, p = o.metrics, o.params

        def num(key: str, m: dict = m) -> float:
            value = m.get(key)
            return float("nan") if value is None else float(value)

        rows.append({
            "run_id": run_id, "trial_number": o.number, "trial_id": o.trial_id,
            "variant": p.get("variant"), "lambda_mi": p.get("lambda_mi"),
            "lambda_tc": p.get("lambda_tc"), "lr": p.get("lr"), "latent_dim": p.get("latent_dim"),
            "batch_size": p.get("batch_size"), "seed": p.get("seed"),
            "scale_tied_codes": p.get("scale_tied_codes"), "c_max": p.get("c_max"),
            "anneal_steps": p.get("anneal_steps"),
            "status": o.status, "error": o.error, "fid": num("fid"), "mig": num("mig"),
            "fid_extractor": m.get("fid_extractor"), "epochs": m.get("epoch"),
            "images_seen": m.get("images_seen"), "train_seconds": num("train_seconds"),
            "eval_seconds": num("eval_seconds"), "startup_seconds": num("startup_seconds"),
            "wall_seconds": num("time_total_s"), "checkpoint_uri": o.checkpoint_uri,
            "code_version": code_version, "created_at": created_at,
        })
    return pa.Table.from_pylist(rows, schema=schema.TRIALS)


def curves_table(outcomes: Sequence[TrialOutcome], run_id: str = "") -> pa.Table:
    """Per-epoch metrics of every trial, long format (trial, epoch, metric, value)."""
    rows = [
        {"run_id": run_id, "trial_number": o.number, "trial_id": o.trial_id, "epoch": int(h["epoch"]),
         "metric": key, "value": float(value)}
        for o in outcomes for h in o.history for key, value in h.items()
        if key != "epoch" and isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
    ]
    return pa.Table.from_pylist(rows, schema=schema.CURVES)


def pareto_table(trials: pa.Table, reference: Sequence[float] | None = None) -> pa.Table:
    """Non-domination rank, front membership, hypervolume contribution and knee of every
    successful trial, with the reference point used and the hypervolume after each trial."""
    ok = sorted((r for r in trials.to_pylist() if r["status"] == "ok"), key=lambda r: r["trial_number"])
    if not ok:
        return schema.PARETO.empty_table()
    a = analyse(np.array([[r["fid"], r["mig"]] for r in ok]), DIRECTIONS, reference)
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


def suite_rows(evaluations: pa.Table, trials: pa.Table) -> tuple[list[dict], list[str]]:
    """The metric suite as one row per trial (``trial_number``, ``variant``, then each metric)."""
    by_id = {r["trial_id"]: r for r in trials.to_pylist()}
    rows: dict[str, dict] = {}
    metrics: list[str] = []
    for e in evaluations.to_pylist():
        t = by_id.get(e["trial_id"])
        if t is None:
            continue
        row = rows.setdefault(e["trial_id"], {"trial_id": e["trial_id"], "trial_number": t["trial_number"],
                                              "variant": t["variant"], "status": t["status"]})
        row[e["metric"]] = e["value"]
        if e["metric"] not in metrics:
            metrics.append(e["metric"])
    ordered = sorted(rows.values(), key=lambda r: r["trial_number"])
    return ordered, ["trial_number", "variant", *sorted(metrics)]


@dataclass(frozen=True)
class ReportPaths:
    run: str
    trials: str
    pareto: str
    index: str
    figures: dict[str, str] = field(default_factory=dict)
    front: list[int] = field(default_factory=list)  # trial numbers on the front
    optuna_front: list[int] | None = None  # Optuna's best_trials, from the journal


def latest_evaluations(evaluations: pa.Table) -> pa.Table:
    """The newest row per (trial, metric) of an evaluations table."""
    newest: dict[tuple, dict] = {}
    for row in evaluations.to_pylist():
        key = (row["trial_id"], row["metric"])
        if key not in newest or row["created_at"] > newest[key]["created_at"]:
            newest[key] = row
    return pa.Table.from_pylist(list(newest.values()), schema=evaluations.schema)


def _optional_table(uri: str) -> pa.Table | None:
    return read_table(uri) if exists(uri) else None


def _optuna_front(run_uri: str, trials: pa.Table) -> list[int] | None:
    """The trial numbers of Optuna's ``best_trials`` (None without a journal), matched to the
    table's rows by their objective values; -1 marks one the table does not hold."""
    if not exists(join(run_uri, "optuna.journal")):
        return None
    from disentune.search.study import best_trial_values

    rows: dict[tuple[float, float], list[int]] = {}
    for r in trials.to_pylist():
        if r["status"] == "ok":
            rows.setdefault((r["fid"], r["mig"]), []).append(r["trial_number"])
    found = []
    for values in best_trial_values(read_bytes(join(run_uri, "optuna.journal"))):
        numbers = rows.get(tuple(values), [])
        found.append(numbers.pop(0) if numbers else -1)
    return sorted(found)


def _front_sections(trials: pa.Table, pareto: pa.Table, traversals: bool) -> list[ModelSection]:
    from disentune.reports.traversals import traversal_png

    by_id = {r["trial_id"]: r for r in trials.to_pylist()}
    sections = []
    for p in sorted((r for r in pareto.to_pylist() if r["on_front"]), key=lambda r: r["fid"]):
        t = by_id[p["trial_id"]]
        png = None
        if traversals and t["checkpoint_uri"]:
            png = traversal_png(t["checkpoint_uri"], trial_label(t))
        sections.append(ModelSection(
            title=trial_label(t) + (" (knee)" if p["knee"] else ""),
            scores=[("fid", f"{t['fid']:.4g}"), ("mig", f"{t['mig']:.4g}"),
                    ("hypervolume contribution", f"{p['hv_contribution']:.4g}"),
                    ("lr", f"{t['lr']:.3g}"), ("latent_dim", str(t["latent_dim"])), ("seed", str(t["seed"])),
                    ("FID extractor", str(t["fid_extractor"])), ("checkpoint", str(t["checkpoint_uri"]))],
            traversal_png=png, trial_number=t["trial_number"],
        ))
    return sections


def build_report(run_uri: str, *, title: str | None = None, summary: Sequence[tuple[str, str]] = (),
                 traversals: bool = True) -> ReportPaths:
    """(Re)write ``pareto.parquet``, ``figures/*.png`` and ``index.html`` of the run at ``run_uri``."""
    trials = read_table(join(run_uri, "trials.parquet"))
    pareto = pareto_table(trials)
    write_table(pareto, join(run_uri, "pareto.parquet"))
    name = run_uri.rstrip("/").rsplit("/", 1)[-1]
    config: dict[str, Any] = {}
    if exists(join(run_uri, "experiment.json")):
        config = json.loads(read_bytes(join(run_uri, "experiment.json")))
        name = config.get("experiment", {}).get("name", name)
    title = title or f"disentune: {name}"

    pareto_data = pareto_plot_data(trials, pareto, f"{title}: FID vs MIG")
    figures: dict[str, bytes] = {"pareto": draw_pareto(pareto_data)}
    if pareto.num_rows:
        figures["hypervolume"] = draw_hypervolume(hypervolume_data(pareto))
        figures["heatmaps"] = draw_heatmaps(heatmap_data(trials))
    curves = _optional_table(join(run_uri, "curves.parquet"))
    if curves is not None and curves.num_rows:
        figures["curves"] = draw_curves(curves_data(curves, trials))
    anomaly = read_dataset(join(run_uri, "anomaly_metrics.parquet"), schema.ANOMALY_METRICS)
    if anomaly.num_rows:
        figures["anomaly"] = draw_anomaly(anomaly_data(anomaly, trials))
    figure_uris = {k: join(run_uri, "figures", f"{k}.png") for k in figures}
    for key, png in figures.items():
        write_bytes(figure_uris[key], png)

    front = sorted(r["trial_number"] for r in pareto.to_pylist() if r["on_front"])
    optuna_front = _optuna_front(run_uri, trials)
    failed = sum(1 for s in trials["status"].to_pylist() if s != "ok")
    lines = [*summary, ("trials", f"{trials.num_rows} ({failed} failed)"),
             ("Pareto front", ", ".join(f"#{n}" for n in front) or "none")]
    if optuna_front is not None:
        agree = "agrees" if optuna_front == front else f"differs: {optuna_front}"
        lines.append(("Optuna best_trials", agree))
    if pareto.num_rows:
        last = pareto.to_pylist()[-1]
        lines += [("hypervolume", f"{max(pareto['hypervolume_so_far'].to_pylist()):.4g}"),
                  ("reference point", f"fid={last['reference_fid']:.4g}, mig={last['reference_mig']:.4g}")]
    captions = {"pareto": "Pareto front: FID against MIG", "hypervolume": "Hypervolume against trial count",
                "heatmaps": "Objectives over lambda_mi x lambda_tc", "curves": "Training curves per trial",
                "anomaly": "Anomaly AUROC against FID and MIG"}
    page = render_index(
        title=title, summary=lines, figures=[(captions[k], png) for k, png in figures.items()],
        trials=trials, front_ids={r["trial_id"] for r in pareto.to_pylist() if r["on_front"]},
        models=_front_sections(trials, pareto, traversals),
        config_text=json.dumps(config, indent=2) if config else "",
        suite=suite_rows(latest_evaluations(read_dataset(join(run_uri, "evaluations.parquet"), schema.EVALUATIONS)), trials),
        pareto=interactive_pareto_data(trials, pareto, pareto_data), curves=curves,
    )
    index = join(run_uri, "index.html")
    write_bytes(index, page.encode("utf-8"))
    return ReportPaths(run_uri, join(run_uri, "trials.parquet"), join(run_uri, "pareto.parquet"), index,
                       figure_uris, front, optuna_front)
