"""``disentune report compare``: two runs' fronts on one figure, under one reference point.

Hypervolumes of different runs are only comparable under the same reference point, so the
comparison recomputes both runs' Pareto analysis against the nadir of their union.
"""

from __future__ import annotations

import base64
import html

import numpy as np

from disentune.errors import UserError
from disentune.pareto import analyse, default_reference, to_minimization
from disentune.reports.html import table_html
from disentune.reports.plots import ParetoPlotData, draw_pareto, trial_label
from disentune.reports.storage import read_table
from disentune.storage import join, write_bytes

DIRECTIONS = ("min", "max")


def compare_runs(run_a: str, run_b: str, out: str) -> str:
    """Write ``out/index.html`` and ``out/compare.png``; returns the page's URI."""
    names, tables = [], []
    for uri in (run_a, run_b):
        trials = read_table(join(uri, "trials.parquet"))
        tables.append([r for r in trials.to_pylist() if r["status"] == "ok"])
        names.append(uri.rstrip("/").rsplit("/", 1)[-1])
    if names[0] == names[1]:
        names = [f"A: {names[0]}", f"B: {names[1]}"]
    values = [np.array([[r["fid"], r["mig"]] for r in rows]).reshape(-1, 2) for rows in tables]
    union = np.concatenate(values)
    if len(union) == 0:
        raise UserError("neither run has a successful trial to compare")
    reference = to_minimization(default_reference(to_minimization(union, DIRECTIONS))[None, :], DIRECTIONS)[0]
    analyses = [analyse(v, DIRECTIONS, reference) if len(v) else None for v in values]
    rows, fid, mig, front, knee, labels, run = [], [], [], [], [], [], []
    for name, trials, a in zip(names, tables, analyses):
        rows.append({"run": name, "trials": len(trials),
                     "front size": int((a.ranks == 0).sum()) if a else 0,
                     "hypervolume": a.hypervolume if a else 0.0})
        for i, t in enumerate(trials):
            fid.append(t["fid"])
            mig.append(t["mig"])
            front.append(bool(a.ranks[i] == 0))
            knee.append(False)
            labels.append(trial_label(t))
            run.append(name)
    png = draw_pareto(ParetoPlotData(np.array(fid), np.array(mig), np.array(front), np.array(knee),
                                     labels, run, f"{names[0]} vs {names[1]}"))
    write_bytes(join(out, "compare.png"), png)
    page = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>disentune compare</title>"
        "</head><body style=\"font-family:system-ui,sans-serif;margin:2rem\">"
        f"<h1>{html.escape(names[0])} vs {html.escape(names[1])}</h1>"
        f"<p>Common reference point: fid={reference[0]:.4g}, mig={reference[1]:.4g}</p>"
        + table_html(rows, ["run", "trials", "front size", "hypervolume"], table_id="runs")
        + f"<figure><img alt=\"fronts\" src=\"data:image/png;base64,{base64.b64encode(png).decode()}\"></figure>"
        "</body></html>"
    )
    index = join(out, "index.html")
    write_bytes(index, page.encode("utf-8"))
    return index

