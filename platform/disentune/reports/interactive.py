"""The interactive Pareto figure's data object, and its points as a JSON blob safe inside a page.

:class:`InteractiveParetoData` wraps the very :class:`~disentune.reports.plots.ParetoPlotData`
the PNG is drawn from and adds what a page needs on top of it (trial numbers for the section
anchors, every objective, replicate ranges, the parameters a tooltip shows). The PNG is drawn
from ``data.plot`` (:func:`~disentune.reports.plots.draw_pareto`), the inline SVG from ``data``
(:func:`~disentune.reports.svg.pareto_svg`): one data object, drawn twice.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from disentune.reports.plots import ParetoPlotData

# the searched parameters a tooltip and a trial's section show, in this order (when present)
PARAM_COLUMNS = ("variant", "lambda_mi", "lambda_tc", "lr", "latent_dim", "batch_size", "seed",
                 "scale_tied_codes", "c_max", "anneal_steps")
DEFAULT_OBJECTIVES = (("fid", "min"), ("mig", "max"))


@dataclass(frozen=True)
class InteractiveParetoData:
    """One point per successful trial (the rows of ``pareto.parquet``, in that order), n points.

    Fields:

    - ``plot``: the PNG's data object (``fid``, ``mig``, ``on_front``, ``knee``, ``labels``,
      ``run``, ``title``, each of length n); the SVG takes front membership, knee, labels, runs
      and title from it.
    - ``trial_number``: ``(n,)`` int; point i links to the page's section ``#trial-<number>``.
    - ``objectives``: objective name -> ``(n,)`` float values, in the run's objective order (2 or
      3 of them; with replicates, the median the search saw). NaN: no value.
    - ``directions``: objective name -> ``"min"`` or ``"max"``.
    - ``axes``: the two objectives on the x and y axes (default: the first two).
    - ``colour``: the objective shown as the points' colour, or None (default: the third
      objective when there is one).
    - ``ranges``: objective name -> ``(low, high)``, two ``(n,)`` float arrays: each point's
      replicate range, drawn as error bars on an axis that shows that objective; NaN where a
      point has none. Empty: no ranges (one seed per trial).
    - ``rank``: ``(n,)`` int non-domination rank (0: on the front).
    - ``params``: n lists of ``(name, value)`` pairs, the trial's searched parameters as stored
      (the tooltip and the trial's section show them).
    - ``trial_id``: n strings, the trials' ids (shown as text, never markup).

    The property ``front_only_objectives`` is True when the axes show all the run's objectives,
    so the front is a staircase in this projection (the SVG joins it then).
    """

    plot: ParetoPlotData
    trial_number: np.ndarray
    objectives: Mapping[str, np.ndarray]
    directions: Mapping[str, str]
    rank: np.ndarray
    params: Sequence[Sequence[tuple[str, Any]]]
    trial_id: Sequence[str]
    axes: tuple[str, str] = ("", "")
    colour: str | None = None
    ranges: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = list(self.objectives)
        if not 2 <= len(names) <= 3:
            raise ValueError(f"2 or 3 objectives are drawn, got {names}")
        if self.axes == ("", ""):
            object.__setattr__(self, "axes", (names[0], names[1]))
        if self.colour is None and len(names) == 3:
            object.__setattr__(self, "colour", next(n for n in names if n not in self.axes))
        n = len(self.plot.labels)
        for name in [*self.axes, *([self.colour] if self.colour else []), *self.ranges]:
            if name not in self.objectives:
                raise ValueError(f"{name!r} is not one of the objectives {names}")
        for name in names:
            if self.directions.get(name) not in ("min", "max"):
                raise ValueError(f"objective {name!r} needs a direction 'min' or 'max'")
        lengths = {len(self.trial_number), len(self.rank), len(self.params), len(self.trial_id),
                   *(len(v) for v in self.objectives.values()),
                   *(len(a) for lo_hi in self.ranges.values() for a in lo_hi)}
        if lengths != {n}:
            raise ValueError(f"every per-point field needs {n} entries, got lengths {sorted(lengths)}")

    @property
    def front_only_objectives(self) -> bool:
        return set(self.axes) == set(self.objectives)

    def __len__(self) -> int:
        return len(self.trial_number)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def interactive_pareto_data(
    trials: pa.Table, pareto: pa.Table, plot: ParetoPlotData, *,
    objectives: Sequence[tuple[str, str]] = DEFAULT_OBJECTIVES, axes: tuple[str, str] | None = None,
    colour: str | None = None,
) -> InteractiveParetoData:
    """The page's Pareto data: ``plot`` (from ``pareto_plot_data(trials, pareto, ...)``, same row
    order) plus each trial's number, objectives and parameters from ``trials``.

    An objective's replicate range is read from the columns ``<objective>_min`` and
    ``<objective>_max`` of the trials table when it has them.
    """
    by_id = {row["trial_id"]: row for row in trials.to_pylist()}
    rows = [{**by_id[r["trial_id"]], **r} for r in pareto.to_pylist()]  # an objective may be in either
    if len(rows) != len(plot.labels):
        raise ValueError(f"the plot holds {len(plot.labels)} points, the Pareto table {len(rows)}")
    columns = set(trials.column_names) | set(pareto.column_names)
    values = {name: np.array([_float(r.get(name)) for r in rows], dtype=float) for name, _ in objectives}
    ranges = {
        name: (np.array([_float(r[f"{name}_min"]) for r in rows], dtype=float),
               np.array([_float(r[f"{name}_max"]) for r in rows], dtype=float))
        for name, _ in objectives if {f"{name}_min", f"{name}_max"} <= columns
    }
    # an unreplicated run's ranges are empty (NaN) or a single point: no error bars then
    ranges = {name: (low, high) for name, (low, high) in ranges.items()
              if np.any(np.isfinite(low) & np.isfinite(high) & (high > low))}
    params = [[(c, r[c]) for c in PARAM_COLUMNS if c in columns and not _missing(r[c])] for r in rows]
    return InteractiveParetoData(
        plot=plot, trial_number=np.array([r["trial_number"] for r in rows], dtype=int),
        objectives=values, directions=dict(objectives),
        rank=np.array([r["rank"] for r in rows], dtype=int), params=params, trial_id=[str(r["trial_id"]) for r in rows],
        axes=axes or ("", ""), colour=colour, ranges=ranges,
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value: Any) -> str:
    """A value as the page shows it: floats to 4 significant digits, NaN and None as ``-``."""
    if _missing(value):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def status_text(data: InteractiveParetoData, i: int) -> str:
    if data.plot.knee[i]:
        return "Pareto front, knee"
    return "Pareto front" if data.plot.on_front[i] else f"dominated (rank {int(data.rank[i])})"


def objective_rows(data: InteractiveParetoData, i: int) -> list[tuple[str, str]]:
    """``(name, text)`` per objective, its replicate range appended when it has one."""
    out = []
    for name, values in data.objectives.items():
        text = format_value(values[i])
        if name in data.ranges:
            low, high = data.ranges[name][0][i], data.ranges[name][1][i]
            if math.isfinite(low) and math.isfinite(high):
                text += f" (replicates {format_value(low)} to {format_value(high)})"
        out.append((name, text))
    return out


def point_records(data: InteractiveParetoData) -> list[dict[str, Any]]:
    """What the page's script needs per point (index i = the SVG point's ``data-i``)."""
    return [{
        "trial": int(data.trial_number[i]),
        "href": f"#trial-{int(data.trial_number[i])}",
        "title": data.plot.labels[i],
        "status": status_text(data, i),
        "rows": [[k, v] for k, v in objective_rows(data, i)]
                + [[k, format_value(v)] for k, v in data.params[i]]
                + [["trial_id", data.trial_id[i]]],
    } for i in range(len(data))]


def script_json(value: Any) -> str:
    """JSON to put between ``<script type="application/json">`` and ``</script>``.

    ``<``, ``>`` and ``&`` are written as ``\\u003c`` etc. (still the same JSON string), so no
    value can close the element (``</script>``) or open a comment (``<!--``); non-ASCII is
    escaped too (U+2028/U+2029 included). NaN is refused: it is not JSON.
    """
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
