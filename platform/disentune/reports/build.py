"""The reports stage: trial outcomes -> Parquet tables -> Pareto analysis -> figures -> HTML.

:func:`build_report` reads everything from the run's URI (local or s3://), so a report can be
rebuilt at any time, e.g. after anomaly results are added.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from disentune.reports import schema
from disentune.reports.anomaly_panels import CAPTIONS, anomaly_panels
from disentune.reports.html import ModelSection, render_index
from disentune.reports.interactive import interactive_pareto_data
from disentune.reports.plots import (
    curves_data,
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
from disentune.reports.tables import curves_table, pareto_table, replicates_table, run_objectives, trials_table

__all__ = ["ReportPaths", "build_report", "curves_table", "pareto_table", "replicates_table", "trials_table"]
from disentune.storage import exists, join, read_bytes, write_bytes

def suite_rows(evaluations: pa.Table, trials: pa.Table) -> tuple[list[dict], list[str]]:
    """The metric suite as one row per trial (``trial_number``, ``variant``, then each metric):
    with replicates, each metric's median over the trial's replicates."""
    by_number = {r["trial_number"]: r for r in trials.to_pylist()}
    values: dict[int, dict[str, list[float]]] = {}
    metrics: list[str] = []
    for e in evaluations.to_pylist():
        if e["trial_number"] not in by_number:
            continue
        values.setdefault(e["trial_number"], {}).setdefault(e["metric"], []).append(e["value"])
        if e["metric"] not in metrics:
            metrics.append(e["metric"])
    rows = []
    for number in sorted(values):
        t = by_number[number]
        rows.append({"trial_id": t["trial_id"], "trial_number": number, "variant": t["variant"], "status": t["status"],
                     **{m: float(np.median(v)) for m, v in values[number].items()}})
    return rows, ["trial_number", "variant", *sorted(metrics)]


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


def _optuna_front(run_uri: str, trials: pa.Table, names: Sequence[str]) -> list[int] | None:
    """The trial numbers of Optuna's ``best_trials`` (None without a journal), matched to the
    table's rows by their objective values; -1 marks one the table does not hold."""
    if not exists(join(run_uri, "optuna.journal")):
        return None
    from disentune.search.study import best_trial_values

    rows: dict[tuple[float, ...], list[int]] = {}
    for r in trials.to_pylist():
        if r["status"] == "ok":
            rows.setdefault(tuple(r[n] for n in names), []).append(r["trial_number"])
    found = []
    for values in best_trial_values(read_bytes(join(run_uri, "optuna.journal"))):
        numbers = rows.get(tuple(values), [])
        found.append(numbers.pop(0) if numbers else -1)
    return sorted(found)


def _front_sections(run_uri: str, trials: pa.Table, pareto: pa.Table, traversals: bool,
                    objectives: Sequence[tuple[str, str]], data_config: dict | None) -> list[ModelSection]:
    from disentune.reports.traversals import run_images, traversal_figures

    by_id = {r["trial_id"]: r for r in trials.to_pylist()}
    sections = []
    first, direction = objectives[0]
    best_first = sorted((r for r in pareto.to_pylist() if r["on_front"]),
                        key=lambda r: r[first] if direction == "min" else -r[first])
    images = run_images(data_config) if traversals and best_first else None
    for p in best_first:
        t = by_id[p["trial_id"]]
        png = gif = None
        if traversals and t["checkpoint_uri"]:
            png, gif = traversal_figures(t["checkpoint_uri"], trial_label(t), images)
            for suffix, content in (("png", png), ("gif", gif)):  # beside the page, as files too
                write_bytes(join(run_uri, "figures", f"traversal-{t['trial_number']}.{suffix}"), content)
        sections.append(ModelSection(
            title=trial_label(t) + (" (knee)" if p["knee"] else ""),
            scores=[*((name, _with_range(t, name)) for name, _ in objectives),
                    ("hypervolume contribution", f"{p['hv_contribution']:.4g}"),
                    ("lr", f"{t['lr']:.3g}"), ("latent_dim", str(t["latent_dim"])), ("seed", str(t["seed"])),
                    ("FID extractor", str(t["fid_extractor"])), ("checkpoint", str(t["checkpoint_uri"]))],
            traversal_png=png, traversal_gif=gif, trial_number=t["trial_number"],
        ))
    return sections


def _with_range(trial: dict, name: str) -> str:
    """A trial's objective, with its replicates' range where it has several."""
    text = f"{trial[name]:.4g}"
    low, high = trial.get(f"{name}_min"), trial.get(f"{name}_max")
    if (trial.get("replicates") or 1) > 1 and low is not None and math.isfinite(low):
        text += f" (replicates {low:.4g} to {high:.4g})"
    return text


def build_report(run_uri: str, *, title: str | None = None, summary: Sequence[tuple[str, str]] = (),
                 traversals: bool = True) -> ReportPaths:
    """(Re)write ``pareto.parquet``, ``figures/*.png`` and ``index.html`` of the run at ``run_uri``."""
    trials = read_table(join(run_uri, "trials.parquet"))
    name = run_uri.rstrip("/").rsplit("/", 1)[-1]
    config: dict[str, Any] = {}
    if exists(join(run_uri, "experiment.json")):
        config = json.loads(read_bytes(join(run_uri, "experiment.json")))
        name = config.get("experiment", {}).get("name", name)
    title = title or f"disentune: {name}"
    objectives = run_objectives(config)
    names = [n for n, _ in objectives]
    pareto = pareto_table(trials, objectives)
    write_table(pareto, join(run_uri, "pareto.parquet"))

    versus = " vs ".join(names)
    pareto_data = pareto_plot_data(trials, pareto, f"{title}: {versus}", objectives=objectives)
    figures: dict[str, bytes] = {"pareto": draw_pareto(pareto_data)}
    if pareto.num_rows:
        figures["hypervolume"] = draw_hypervolume(hypervolume_data(pareto, names))
        figures["heatmaps"] = draw_heatmaps(heatmap_data(trials, objectives=objectives))
    curves = _optional_table(join(run_uri, "curves.parquet"))
    if curves is not None and curves.num_rows:
        figures["curves"] = draw_curves(curves_data(curves, trials))
    figure_uris = {k: join(run_uri, "figures", f"{k}.png") for k in figures}
    for key, png in figures.items():
        write_bytes(figure_uris[key], png)

    front = sorted(r["trial_number"] for r in pareto.to_pylist() if r["on_front"])
    optuna_front = _optuna_front(run_uri, trials, names)
    statuses = trials["status"].to_pylist()
    failed, stopped = statuses.count("failed"), statuses.count("stopped")
    counted = f"{trials.num_rows} ({failed} failed" + (f", {stopped} stopped early" if stopped else "") + ")"
    lines = [*summary, ("trials", counted),
             ("Pareto front", ", ".join(f"#{n}" for n in front) or "none")]
    if optuna_front is not None:
        agree = "agrees" if optuna_front == front else f"differs: {optuna_front}"
        lines.append(("Optuna best_trials", agree))
    if pareto.num_rows:
        last = pareto.to_pylist()[-1]
        lines += [("hypervolume", f"{max(pareto['hypervolume_so_far'].to_pylist()):.4g}"),
                  ("reference point", ", ".join(f"{n}={last[f'reference_{n}']:.4g}" for n in names))]
    captions = {"pareto": f"Pareto front: {' against '.join(names[:2])}" + (
                    f" (the front in all of {', '.join(names)})" if len(names) > 2 else ""),
                "hypervolume": "Hypervolume against trial count",
                "heatmaps": "Objectives over lambda_mi x lambda_tc", "curves": "Training curves per trial"}
    # the subset-scanning study's findings, each from a stored data object (figures/*.parquet)
    anomaly_figures = anomaly_panels(run_uri, trials, objectives)
    captioned = {CAPTIONS[key].format(x=names[0], y=names[1]): key for key in CAPTIONS}
    figure_uris.update({captioned[c]: join(run_uri, "figures", f"{captioned[c]}.png") for c, _ in anomaly_figures})
    page = render_index(
        title=title, summary=lines,
        figures=[*((captions[k], png) for k, png in figures.items()), *anomaly_figures],
        trials=trials, front_ids={r["trial_id"] for r in pareto.to_pylist() if r["on_front"]},
        models=_front_sections(run_uri, trials, pareto, traversals, objectives,
                               config.get("experiment", {}).get("data")),
        config_text=json.dumps(config, indent=2) if config else "",
        suite=suite_rows(latest_evaluations(read_dataset(join(run_uri, "evaluations.parquet"), schema.EVALUATIONS)), trials),
        pareto=interactive_pareto_data(trials, pareto, pareto_data, objectives=objectives), curves=curves,
    )
    index = join(run_uri, "index.html")
    write_bytes(index, page.encode("utf-8"))
    return ReportPaths(run_uri, join(run_uri, "trials.parquet"), join(run_uri, "pareto.parquet"), index,
                       figure_uris, front, optuna_front)
