"""The run's ``index.html``: self-contained (figures embedded), every data string escaped."""

from __future__ import annotations

import base64
import html
import math
from typing import Any, Sequence

import pyarrow as pa

_COLUMNS = (
    "trial_number", "variant", "lambda_mi", "lambda_tc", "lr", "latent_dim", "batch_size",
    "seed", "status", "fid", "mig", "images_seen", "train_seconds", "startup_seconds", "error",
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:0.85rem}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0}tr.front td{background:#eef5ff}td.num{text-align:right}
img{max-width:100%;border:1px solid #ddd}
"""


def _cell(value: Any) -> tuple[str, str]:
    if isinstance(value, float):
        return ("num", "" if math.isnan(value) else f"{value:.4g}")
    if isinstance(value, int):
        return ("num", str(value))
    return ("", html.escape("" if value is None else str(value)))


def render_index(
    *, title: str, summary: Sequence[tuple[str, str]], figures: Sequence[tuple[str, bytes]],
    trials: pa.Table, front_ids: set[str],
) -> str:
    """The page as a string: a summary list, PNG figures inlined as data URIs, the trials table."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>",
        *(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary),
        "</ul>",
    ]
    for caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    columns = [c for c in _COLUMNS if c in trials.column_names]
    parts.append("<h2>Trials</h2><table id='trials'><thead><tr>")
    parts += [f"<th>{html.escape(c)}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    for row in trials.to_pylist():
        css = " class='front'" if row["trial_id"] in front_ids else ""
        cells = "".join(f"<td class='{cls}'>{text}</td>" for cls, text in map(_cell, (row[c] for c in columns)))
        parts.append(f"<tr{css}>{cells}</tr>")
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts)
