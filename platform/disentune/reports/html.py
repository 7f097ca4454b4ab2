"""The run's ``index.html``: self-contained (figures inlined), every data string escaped.

The trials table sorts on a header click and filters on typed text (a few lines of inline
JavaScript, no external assets), so the page works from a file, a bucket or ``report view``.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Any, Sequence

import pyarrow as pa

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
.model{border-top:1px solid #ccc;margin-top:1.5rem}pre{background:#f7f7f7;padding:.7rem;overflow:auto;font-size:.78rem}
input#filter{margin:.5rem 0;padding:.3rem;width:20rem}
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
"""


@dataclass(frozen=True)
class ModelSection:
    """One Pareto-front model: its title, scores and traversal figure."""

    title: str
    scores: Sequence[tuple[str, str]]
    traversal_png: bytes | None


def _cell(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("", str(value))
    if isinstance(value, float):
        return ("num", "" if math.isnan(value) else f"{value:.4g}")
    if isinstance(value, int):
        return ("num", str(value))
    return ("", html.escape("" if value is None else str(value)))


def _img(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption, quote=True)
    return (f"<figure><img alt=\"{alt}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def table_html(rows: Sequence[dict], columns: Sequence[str], *, table_id: str,
               row_class: Any = None) -> str:
    parts = [f"<table id=\"{table_id}\" class=\"sortable\"><thead><tr>"]
    parts += [f"<th>{html.escape(c)}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        css = row_class(row) if row_class else ""
        cells = "".join(f"<td class=\"{cls}\">{text}</td>" for cls, text in (_cell(row.get(c)) for c in columns))
        parts.append(f"<tr class=\"{css}\">{cells}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def render_index(
    *, title: str, summary: Sequence[tuple[str, str]], figures: Sequence[tuple[str, bytes]],
    trials: pa.Table, front_ids: set[str], models: Sequence[ModelSection] = (),
    config_text: str = "", suite: tuple[Sequence[dict], Sequence[str]] | None = None,
) -> str:
    """The whole page as a string."""

    def row_class(row: dict) -> str:
        return " ".join(c for c in ("front" if row["trial_id"] in front_ids else "",
                                    "failed" if row.get("status") != "ok" else "") if c)

    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul id=\"summary\">",
        *(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary),
        "</ul><h2>Figures</h2>",
        *(_img(png, caption) for caption, png in figures),
        "<h2>Trials</h2><p>Click a header to sort; front trials are shaded.</p>",
        "<input id=\"filter\" type=\"search\" placeholder=\"filter rows\" aria-label=\"filter rows\">",
        table_html(trials.to_pylist(), [c for c in TRIAL_COLUMNS if c in trials.column_names],
                   table_id="trials", row_class=row_class),
    ]
    if suite is not None and suite[0]:
        parts += ["<h2>Metric suite</h2><p>One row per trial: every value of <code>evaluations.parquet"
                  "</code> (its parameters and seeds are in the table).</p>",
                  table_html(suite[0], suite[1], table_id="evaluations", row_class=row_class)]
    if models:
        parts.append("<h2>Pareto-front models</h2>")
    for m in models:
        parts.append(f"<section class=\"model\"><h3>{html.escape(m.title)}</h3><ul>")
        parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in m.scores]
        parts.append("</ul>")
        if m.traversal_png:
            parts.append(_img(m.traversal_png, f"Latent traversal: {m.title}"))
        parts.append("</section>")
    if config_text:
        parts.append(f"<h2>Config and versions</h2><pre id=\"config\">{html.escape(config_text)}</pre>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)
