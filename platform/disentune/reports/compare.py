"""``disentune report compare``: two runs' fronts on one figure, under one reference point.

Hypervolumes of different runs are only comparable under the same reference point, so the
comparison recomputes both runs' Pareto analysis against the nadir of their union.
"""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from disentune.errors import UserError
from disentune.pareto import analyse, default_reference, to_minimization
from disentune.reports.html import table_html
from disentune.reports.plots import ParetoPlotData, draw_pareto, trial_label
from disentune.reports.storage import read_table
from disentune.reports.tables import run_objectives
from disentune.storage import exists, join, read_bytes, write_bytes

def _objectives(uri: str) -> tuple[tuple[str, str], ...]:
    config = json.loads(read_bytes(join(uri, "experiment.json"))) if exists(join(uri, "experiment.json")) else {}
    return run_objectives(config)


def compare_runs(run_a: str, run_b: str, out: str) -> str:
    """Write ``out/index.html`` and ``out/compare.png``; returns the page's URI. Both runs must
    share their objectives (2 or 3); the fronts are drawn in the first two."""
    names, tables = [], []
    objectives = _objectives(run_a)
    if _objectives(run_b) != objectives:
        raise UserError(f"the runs have different objectives ({_objectives(run_a)} and {_objectives(run_b)}); "
                        "their fronts cannot be compared")
    keys = [o for o, _ in objectives]
    directions = [d for _, d in objectives]
    for uri in (run_a, run_b):
        trials = read_table(join(uri, "trials.parquet"))
        tables.append([r for r in trials.to_pylist() if r["status"] == "ok"])
        names.append(uri.rstrip("/").rsplit("/", 1)[-1])
    if names[0] == names[1]:
        names = [f"A: {names[0]}", f"B: {names[1]}"]
    values = [np.array([[r[k] for k in keys] for r in rows]).reshape(-1, len(keys)) for rows in tables]
    union = np.concatenate(values)
    if len(union) == 0:
        raise UserError("neither run has a successful trial to compare")
    reference = to_minimization(default_reference(to_minimization(union, directions))[None, :], directions)[0]
    analyses = [analyse(v, directions, reference) if len(v) else None for v in values]
    rows, xs, ys, front, knee, labels, run = [], [], [], [], [], [], []
    for name, trials, a in zip(names, tables, analyses):
        rows.append({"run": name, "trials": len(trials),
                     "front size": int((a.ranks == 0).sum()) if a else 0,
                     "hypervolume": a.hypervolume if a else 0.0})
        for i, t in enumerate(trials):
            xs.append(t[keys[0]])
            ys.append(t[keys[1]])
            front.append(bool(a.ranks[i] == 0))
            knee.append(False)
            labels.append(trial_label(t))
            run.append(name)
    png = draw_pareto(ParetoPlotData(np.array(xs), np.array(ys), np.array(front), np.array(knee), labels, run,
                                     f"{names[0]} vs {names[1]}", axes=(keys[0], keys[1]),
                                     directions=(directions[0], directions[1]), staircase=len(keys) == 2))
    write_bytes(join(out, "compare.png"), png)
    page = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>disentune compare</title>"
        "</head><body style=\"font-family:system-ui,sans-serif;margin:2rem\">"
        f"<h1>{html.escape(names[0])} vs {html.escape(names[1])}</h1>"
        "<p>Common reference point: " + html.escape(", ".join(f"{k}={v:.4g}" for k, v in zip(keys, reference)))
        + "</p>"
        + table_html(rows, ["run", "trials", "front size", "hypervolume"], table_id="runs")
        + f"<figure><img alt=\"fronts\" src=\"data:image/png;base64,{base64.b64encode(png).decode()}\"></figure>"
        "</body></html>"
    )
    index = join(out, "index.html")
    write_bytes(index, page.encode("utf-8"))
    return index

