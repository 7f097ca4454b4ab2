"""The run's ``index.html``: self-contained (figures inlined), every data string escaped.

The trials table sorts on a header click and filters on typed text (a few lines of inline
JavaScript, no external assets), so the page works from a file, a bucket or ``report view``.

Given the Pareto data (:class:`~disentune.reports.interactive.InteractiveParetoData`) the page
also shows the Pareto plot as inline SVG: hovering a point shows its trial's objectives and
parameters (read from a JSON blob in the page), clicking it jumps to the trial's section. Every
successful trial has a section ``id="trial-<number>"`` (front models with their traversal, the
others compact), and the trials table (by the trial's id) and the metric-suite table (by its
number) link each row to it.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from disentune.reports.interactive import (
    InteractiveParetoData,
    format_value,
    objective_rows,
    point_records,
    script_json,
    status_text,
)
from disentune.reports.svg import pareto_svg, sparkline_svg

TRIAL_COLUMNS = (
    "trial_number", "trial_id", "variant", "lambda_mi", "lambda_tc", "lr", "latent_dim",
    "batch_size", "seed", "status", "fid", "mig", "images_seen", "train_seconds",
    "startup_seconds", "eval_seconds", "error",
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;color:#222;max-width:1250px;padding:0 1rem}
table{border-collapse:collapse;font-size:0.82rem}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0;cursor:pointer;user-select:none}th[data-order=asc]::after{content:" \\25B2"}
th[data-order=desc]::after{content:" \\25BC"}tr.front td{background:#eef5ff}td.num{text-align:right}
tr.failed td{color:#a00}img{max-width:100%;border:1px solid #ddd}figure{margin:1rem 0}
.model{border-top:1px solid #ccc;margin-top:1.5rem}.traversal{display:flex;gap:1.5rem;align-items:flex-start;flex-wrap:wrap}pre{background:#f7f7f7;padding:.7rem;overflow:auto;font-size:.78rem}
input#filter{margin:.5rem 0;padding:.3rem;width:20rem}
#pareto-wrap{position:relative;display:inline-block;max-width:100%}#pareto-svg{max-width:100%;height:auto}
#pareto-svg a.point{cursor:pointer}
#pareto-svg a.point:hover circle,#pareto-svg a.point:focus circle{stroke:#000;stroke-width:2.5}
#pareto-tooltip{position:absolute;z-index:2;pointer-events:none;background:#fffff4;border:1px solid #999;
 box-shadow:0 2px 6px rgba(0,0,0,.25);padding:.35rem .5rem;font-size:.78rem;width:max-content;max-width:26rem}
#pareto-tooltip table{font-size:.76rem}#pareto-tooltip td{border:none;padding:0 .4rem 0 0;overflow-wrap:anywhere}
#pareto-tooltip td:first-child{white-space:nowrap}
#pareto-tooltip .tip-title{font-weight:bold}#pareto-tooltip .tip-status{color:#555;margin-bottom:.2rem}
section.trial{border-top:1px solid #e2e2e2;margin-top:.6rem;padding:.2rem .4rem}
section.trial h3{font-size:.95rem;margin:.3rem 0}
section:target{background:#fff8dc;outline:2px solid #e0b000}
ul.kv{list-style:none;padding:0;margin:.2rem 0;display:flex;flex-wrap:wrap;gap:.2rem 1.1rem;font-size:.85rem}
.spark{vertical-align:middle;border:none}.curves span{margin-right:1rem;font-size:.8rem;white-space:nowrap}
"""

_SCRIPT = """
(function () {
  function key(cell) {
    var text = cell.textContent.trim();
    var num = parseFloat(text);
    return text !== '' && !isNaN(num) && isFinite(text) ? num : text.toLowerCase();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, col) {
      th.addEventListener('click', function () {
        var asc = th.dataset.order !== 'asc';
        table.querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
        th.dataset.order = asc ? 'asc' : 'desc';
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var filter = document.getElementById('filter');
  if (filter) {
    filter.addEventListener('input', function () {
      var q = filter.value.toLowerCase();
      document.querySelectorAll('#trials tbody tr').forEach(function (r) {
        r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      });
    });
  }
})();
(function () {
  // the Pareto plot's tooltip: a point's data-i indexes the JSON blob; text only, never markup
  var blob = document.getElementById('pareto-points');
  var wrap = document.getElementById('pareto-wrap');
  var tip = document.getElementById('pareto-tooltip');
  if (!blob || !wrap || !tip) { return; }
  var points = JSON.parse(blob.textContent);
  function place(x, y) {
    var box = wrap.getBoundingClientRect();
    var left = x - box.left + 14;
    if (left + tip.offsetWidth > box.width) { left = Math.max(0, x - box.left - tip.offsetWidth - 14); }
    tip.style.left = left + 'px';
    tip.style.top = (y - box.top + 14) + 'px';
  }
  function show(point, x, y) {
    var title = document.createElement('div');
    title.className = 'tip-title';
    title.textContent = point.title;
    var status = document.createElement('div');
    status.className = 'tip-status';
    status.textContent = point.status;
    var table = document.createElement('table');
    point.rows.forEach(function (row) {
      var tr = table.insertRow();
      tr.insertCell().textContent = row[0];
      tr.insertCell().textContent = row[1];
    });
    tip.replaceChildren(title, status, table);
    tip.hidden = false;
    place(x, y);
  }
  function hide() { tip.hidden = true; }
  wrap.querySelectorAll('a.point').forEach(function (a) {
    var point = points[Number(a.dataset.i)];
    a.addEventListener('mouseenter', function (e) { show(point, e.clientX, e.clientY); });
    a.addEventListener('mousemove', function (e) { place(e.clientX, e.clientY); });
    a.addEventListener('mouseleave', hide);
    a.addEventListener('click', hide);
    a.addEventListener('focus', function () {
      var r = a.getBoundingClientRect();
      show(point, r.right, r.bottom);
    });
    a.addEventListener('blur', hide);
  });
})();
"""


@dataclass(frozen=True)
class ModelSection:
    """One Pareto-front model: its title, scores and traversal figure; with its trial number
    the section gets the anchor ``id="trial-<number>"`` the plot and the tables link to."""

    title: str
    scores: Sequence[tuple[str, str]]
    traversal_png: bytes | None
    traversal_gif: bytes | None = None
    trial_number: int | None = None


def section_id(trial_number: int) -> str:
    return f"trial-{int(trial_number)}"


def _cell(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("", str(value))
    if isinstance(value, float):
        return ("num", "" if math.isnan(value) else f"{value:.4g}")
    if isinstance(value, int):
        return ("num", str(value))
    return ("", html.escape("" if value is None else str(value)))


def _img(png: bytes, caption: str, mime: str = "image/png") -> str:
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption, quote=True)
    return (f"<figure><img alt=\"{alt}\" src=\"data:{mime};base64,{data}\">"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def table_html(rows: Sequence[dict], columns: Sequence[str], *, table_id: str,
               row_class: Any = None, row_link: Callable[[dict], str | None] | None = None,
               link_column: str = "trial_number") -> str:
    """A sortable table; ``row_link(row)`` (a fragment such as ``#trial-3``, or None) makes the
    row's ``link_column`` cell a link."""
    parts = [f"<table id=\"{table_id}\" class=\"sortable\"><thead><tr>"]
    parts += [f"<th>{html.escape(c)}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        css = row_class(row) if row_class else ""
        href = row_link(row) if row_link else None
        cells = []
        for c in columns:
            cls, text = _cell(row.get(c))
            if href and c == link_column:
                text = f"<a href=\"{html.escape(href, quote=True)}\">{text}</a>"
            cells.append(f"<td class=\"{cls}\">{text}</td>")
        parts.append(f"<tr class=\"{css}\">{''.join(cells)}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _kv(pairs: Sequence[tuple[str, str]]) -> str:
    return "<ul class=\"kv\">" + "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in pairs) + "</ul>"


def trial_curves(curves: pa.Table | None) -> dict[int, dict[str, tuple[list[int], list[float]]]]:
    """trial number -> metric -> (epochs, values), from the long ``curves.parquet`` table."""
    out: dict[int, dict[str, tuple[list[int], list[float]]]] = {}
    if curves is None:
        return out
    for r in sorted(curves.to_pylist(), key=lambda r: (r["trial_number"], r["metric"], r["epoch"])):
        epochs, values = out.setdefault(r["trial_number"], {}).setdefault(r["metric"], ([], []))
        epochs.append(r["epoch"])
        values.append(r["value"])
    return out


def _curves_html(series: Mapping[str, tuple[list[int], list[float]]]) -> str:
    if not series:
        return ""
    spans = []
    for metric, (epochs, values) in series.items():
        label = (f"{metric}: {format_value(values[0])} to {format_value(values[-1])} "
                 f"over epochs {epochs[0]}-{epochs[-1]}")
        spans.append(f"<span><b>{html.escape(metric)}</b> {sparkline_svg(epochs, values, label=label)} "
                     f"{html.escape(format_value(values[0]))} &rarr; {html.escape(format_value(values[-1]))}</span>")
    return "<div class=\"curves\">Training curves: " + "".join(spans) + "</div>"


def _suite_html(row: Mapping[str, Any] | None, metrics: Sequence[str]) -> str:
    if not row:
        return ""
    pairs = [(m, format_value(row.get(m))) for m in metrics if m in row]
    return "<div class=\"suite\">Metric suite:" + _kv(pairs) + "</div>" if pairs else ""


def _pareto_figure(data: InteractiveParetoData) -> str:
    return (
        "<figure class=\"pareto-interactive\"><div id=\"pareto-wrap\">" + pareto_svg(data)
        + "<div id=\"pareto-tooltip\" role=\"tooltip\" hidden></div></div><figcaption>"
        + html.escape(f"Pareto front: {data.axes[0]} against {data.axes[1]}"
                      + (f", colour: {data.colour}" if data.colour else "")
                      + ". Hover a point for its trial's parameters; click it for the trial's section.")
        + "</figcaption></figure><script type=\"application/json\" id=\"pareto-points\">"
        + script_json(point_records(data)) + "</script>"
    )


def _compact_section(data: InteractiveParetoData, i: int, extra: str) -> str:
    number = int(data.trial_number[i])
    return (f"<section class=\"trial\" id=\"{section_id(number)}\"><h3>{html.escape(data.plot.labels[i])} "
            f"<small>{html.escape(status_text(data, i))}</small></h3>"
            + _kv([*objective_rows(data, i), *((k, format_value(v)) for k, v in data.params[i]),
                   ("trial_id", data.trial_id[i])])
            + extra + "</section>")


def render_index(
    *, title: str, summary: Sequence[tuple[str, str]], figures: Sequence[tuple[str, bytes]],
    trials: pa.Table, front_ids: set[str], models: Sequence[ModelSection] = (),
    config_text: str = "", suite: tuple[Sequence[dict], Sequence[str]] | None = None,
    pareto: InteractiveParetoData | None = None, curves: pa.Table | None = None,
) -> str:
    """The whole page as a string.

    ``pareto`` adds the interactive Pareto plot and a compact section for every successful
    trial without a ``models`` entry; ``curves`` (``curves.parquet``) adds each trial's training
    curves to its section.
    """

    def row_class(row: dict) -> str:
        return " ".join(c for c in ("front" if row["trial_id"] in front_ids else "",
                                    "failed" if row.get("status") != "ok" else "") if c)

    suite_by_trial = {r["trial_number"]: r for r in suite[0]} if suite is not None else {}
    suite_metrics = list(suite[1][2:]) if suite is not None else []
    series = trial_curves(curves)

    def extra(number: int | None) -> str:
        if number is None:
            return ""
        return _suite_html(suite_by_trial.get(number), suite_metrics) + _curves_html(series.get(number, {}))

    point = {int(n): i for i, n in enumerate(pareto.trial_number)} if pareto is not None else {}

    def params(number: int | None) -> str:
        if number not in point:
            return ""
        return "<div class=\"params\">Parameters:" + _kv(
            [(k, format_value(v)) for k, v in pareto.params[point[number]]]) + "</div>"

    model_numbers = {m.trial_number for m in models if m.trial_number is not None}
    compact = [] if pareto is None else [
        i for i in np.argsort(pareto.trial_number, kind="stable") if int(pareto.trial_number[i]) not in model_numbers]
    sections = model_numbers | {int(pareto.trial_number[i]) for i in compact} if pareto is not None else model_numbers

    def row_link(row: dict) -> str | None:
        number = row.get("trial_number")
        return f"#{section_id(number)}" if number in sections else None

    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul id=\"summary\">",
        *(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary),
        "</ul><h2>Figures</h2>",
        *([_pareto_figure(pareto)] if pareto is not None and len(pareto) else []),
        *(_img(png, caption) for caption, png in figures),
        "<h2>Trials</h2><p>Click a header to sort; front trials are shaded; a trial's id links to its section.</p>",
        "<input id=\"filter\" type=\"search\" placeholder=\"filter rows\" aria-label=\"filter rows\">",
        table_html(trials.to_pylist(), [c for c in TRIAL_COLUMNS if c in trials.column_names],
                   table_id="trials", row_class=row_class, row_link=row_link, link_column="trial_id"),
    ]
    if suite is not None and suite[0]:
        parts += ["<h2>Metric suite</h2><p>One row per trial: every value of <code>evaluations.parquet"
                  "</code> (its parameters and seeds are in the table).</p>",
                  table_html(suite[0], suite[1], table_id="evaluations", row_class=row_class, row_link=row_link)]
    if models:
        parts.append("<h2>Pareto-front models</h2>")
    for m in models:
        anchor = f" id=\"{section_id(m.trial_number)}\"" if m.trial_number is not None else ""
        parts.append(f"<section class=\"model\"{anchor}><h3>{html.escape(m.title)}</h3><ul>")
        parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in m.scores]
        parts.append("</ul>")
        parts.append(params(m.trial_number) + extra(m.trial_number))
        if m.traversal_png:
            parts.append("<div class=\"traversal\">" + _img(m.traversal_png, f"Latent traversal: {m.title}"))
            if m.traversal_gif:
                parts.append(_img(m.traversal_gif, f"Animated traversal: {m.title}", mime="image/gif"))
            parts.append("</div>")
        parts.append("</section>")
    if compact:
        parts.append("<h2>Other trials</h2><p>Every other successful trial: scores and parameters "
                     "(no traversal).</p>" if models else "<h2>Trials' sections</h2>")
        parts += [_compact_section(pareto, i, extra(int(pareto.trial_number[i]))) for i in compact]
    if config_text:
        parts.append(f"<h2>Config and versions</h2><pre id=\"config\">{html.escape(config_text)}</pre>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)
