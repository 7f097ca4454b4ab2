"""Figures, each computed as a small data object first and then drawn thinly with matplotlib.

The ``*_data`` functions are pure (tables in, arrays out) and unit-tested; the ``draw_*``
functions only turn a data object into PNG bytes.
"""

from __future__ import annotations

import io
from typing import Sequence
from dataclasses import dataclass, field

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def png_bytes(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def trial_label(row: dict) -> str:
    return f"#{row['trial_number']} {row['variant']} mi={row['lambda_mi']:.2g} tc={row['lambda_tc']:.2g}"


# -- Pareto front ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParetoPlotData:
    """One objective (x) against another (y) of one or more runs' trials (``n`` points each field).

    ``axes`` names the two objectives and ``directions`` theirs (``"min"``/``"max"``); ``staircase``
    is False when the run has a third objective (its front is then no staircase in these two);
    ``x_range``/``y_range``, when given, are ``(low, high)`` arrays of each point's replicate range
    (NaN: none), drawn as error bars.
    """

    x: np.ndarray
    y: np.ndarray
    on_front: np.ndarray
    knee: np.ndarray
    labels: list[str]
    run: list[str]
    title: str
    axes: tuple[str, str] = ("fid", "mig")
    directions: tuple[str, str] = ("min", "max")
    staircase: bool = True
    x_range: tuple[np.ndarray, np.ndarray] | None = None
    y_range: tuple[np.ndarray, np.ndarray] | None = None


def pareto_plot_data(trials: pa.Table, pareto: pa.Table, title: str, run: str = "",
                     objectives: Sequence[tuple[str, str]] = (("fid", "min"), ("mig", "max"))) -> ParetoPlotData:
    """Join the Pareto table with the trials' weights to label every point; the first two
    objectives go on the axes, with their replicate ranges when the trials table has them."""
    by_id = {row["trial_id"]: row for row in trials.to_pylist()}
    rows = pareto.to_pylist()
    (xn, xd), (yn, yd) = objectives[0], objectives[1]

    def span(name: str) -> tuple[np.ndarray, np.ndarray] | None:
        if f"{name}_min" not in trials.column_names:
            return None
        low = np.array([_nan(by_id[r["trial_id"]][f"{name}_min"]) for r in rows], dtype=float)
        high = np.array([_nan(by_id[r["trial_id"]][f"{name}_max"]) for r in rows], dtype=float)
        return None if np.all(~np.isfinite(low) | (low == high)) else (low, high)

    return ParetoPlotData(
        x=np.array([r[xn] for r in rows], dtype=float), y=np.array([r[yn] for r in rows], dtype=float),
        on_front=np.array([r["on_front"] for r in rows], dtype=bool),
        knee=np.array([r["knee"] for r in rows], dtype=bool),
        labels=[trial_label(by_id[r["trial_id"]]) for r in rows],
        run=[run] * len(rows), title=title, axes=(xn, yn), directions=(xd, yd),
        staircase=len(objectives) == 2, x_range=span(xn), y_range=span(yn),
    )


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def axis_label(name: str, direction: str) -> str:
    better = "lower" if direction == "min" else "higher"
    extra = "; the dataset-factor or Inception features the run names" if name in ("fid", "kid") else ""
    return f"{name} ({better} is better{extra})"


def draw_pareto(data: ParetoPlotData) -> bytes:
    """Dominated points grey, each run's front joined as a staircase (two objectives) and
    labelled, replicate ranges as error bars, the knee ringed."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    runs = list(dict.fromkeys(data.run))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for k, run in enumerate(runs):
        mine = np.array([r == run for r in data.run], dtype=bool)
        colour = colours[k % len(colours)]
        dominated = mine & ~data.on_front
        ax.scatter(data.x[dominated], data.y[dominated], c="0.65" if len(runs) == 1 else colour,
                   alpha=1.0 if len(runs) == 1 else 0.35, s=28, label=f"{run} dominated".strip())
        front = mine & data.on_front
        order = np.argsort(data.x[front])
        fx, fy = data.x[front][order], data.y[front][order]
        if data.staircase:  # the dominated region's boundary: flat towards the worse x
            where = "post" if (data.directions[0] == "min") == (data.directions[1] == "max") else "pre"
            ax.step(fx, fy, where=where, color=colour, lw=1.5)
        _error_bars(ax, data, front, colour)
        ax.scatter(fx, fy, c=colour, s=40, zorder=3, label=f"{run} Pareto front".strip())
        for i in np.flatnonzero(front):
            ax.annotate(data.labels[i], (data.x[i], data.y[i]), textcoords="offset points",
                        xytext=(5, 4), fontsize=7)
    if data.knee.any():
        ax.scatter(data.x[data.knee], data.y[data.knee], s=160, facecolors="none",
                   edgecolors="tab:red", lw=1.8, zorder=4, label="knee")
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel(axis_label(data.axes[0], data.directions[0]))
    ax.set_ylabel(axis_label(data.axes[1], data.directions[1]))
    ax.set_title(data.title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run whose every trial failed has nothing to label
        ax.legend(loc="best", fontsize=8)
    return png_bytes(fig)


def _error_bars(ax, data: ParetoPlotData, where: np.ndarray, colour: str) -> None:
    """Each point's replicate range along x and y (where it has one)."""
    for axis, span in (("x", data.x_range), ("y", data.y_range)):
        if span is None:
            continue
        low, high = span
        has = where & np.isfinite(low) & np.isfinite(high)
        if not has.any():
            continue
        centre = data.x if axis == "x" else data.y
        err = np.vstack([centre[has] - low[has], high[has] - centre[has]])
        kwargs = {"xerr": err} if axis == "x" else {"yerr": err}
        ax.errorbar(data.x[has], data.y[has], fmt="none", ecolor=colour, alpha=0.6, capsize=2, lw=1, **kwargs)


# -- hypervolume history -------------------------------------------------------------------------
@dataclass(frozen=True)
class HypervolumeData:
    trial_number: np.ndarray
    hypervolume: np.ndarray
    reference: dict[str, float]  # objective -> the reference point's coordinate


def hypervolume_data(pareto: pa.Table, objectives: Sequence[str] = ("fid", "mig")) -> HypervolumeData:
    rows = sorted(pareto.to_pylist(), key=lambda r: r["trial_number"])
    ref = {o: (rows[0][f"reference_{o}"] if rows else np.nan) for o in objectives}
    return HypervolumeData(
        np.array([r["trial_number"] for r in rows]), np.array([r["hypervolume_so_far"] for r in rows]), ref
    )


def draw_hypervolume(data: HypervolumeData) -> bytes:
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=110)
    ax.step(data.trial_number, data.hypervolume, where="post", color="tab:blue")
    ax.scatter(data.trial_number, data.hypervolume, s=12, color="tab:blue")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume")
    reference = ", ".join(f"{o}={v:.4g}" for o, v in data.reference.items())
    ax.set_title(f"Hypervolume so far (reference {reference})",
                 fontsize=9)
    ax.grid(alpha=0.3)
    return png_bytes(fig)


# -- objectives over the two weights ---------------------------------------------------------
@dataclass(frozen=True)
class HeatmapData:
    """Mean of each objective over a ``bins x bins`` grid of lambda_mi x lambda_tc (NaN: no trial)."""

    mi_edges: np.ndarray
    tc_edges: np.ndarray
    grids: dict[str, np.ndarray]  # objective -> (len(tc_edges)-1, len(mi_edges)-1)
    counts: np.ndarray
    directions: dict[str, str] = field(default_factory=dict)


def heatmap_data(trials: pa.Table, bins: int = 6,
                 objectives: Sequence[tuple[str, str]] = (("fid", "min"), ("mig", "max"))) -> HeatmapData:
    rows = [r for r in trials.to_pylist() if r["status"] == "ok"]
    mi = np.array([r["lambda_mi"] for r in rows], dtype=float)
    tc = np.array([r["lambda_tc"] for r in rows], dtype=float)

    def edges(v: np.ndarray) -> np.ndarray:
        low, high = (v.min(), v.max()) if len(v) else (0.0, 1.0)
        return np.linspace(low, high if high > low else low + 1.0, bins + 1)

    mi_edges, tc_edges = edges(mi), edges(tc)
    ix = np.clip(np.searchsorted(mi_edges, mi, side="right") - 1, 0, bins - 1)
    iy = np.clip(np.searchsorted(tc_edges, tc, side="right") - 1, 0, bins - 1)
    counts = np.zeros((bins, bins))
    np.add.at(counts, (iy, ix), 1)
    grids = {}
    for objective, _ in objectives:
        sums = np.zeros((bins, bins))
        np.add.at(sums, (iy, ix), np.array([r[objective] for r in rows], dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            grids[objective] = np.where(counts > 0, sums / counts, np.nan)
    return HeatmapData(mi_edges, tc_edges, grids, counts, dict(objectives))


def draw_heatmaps(data: HeatmapData) -> bytes:
    fig, axes = plt.subplots(1, len(data.grids), figsize=(5.0 * len(data.grids), 4.0), dpi=110, squeeze=False)
    for ax, (objective, grid) in zip(axes[0], data.grids.items()):
        low_is_good = data.directions.get(objective, "max") == "min"
        mesh = ax.pcolormesh(data.mi_edges, data.tc_edges, np.ma.masked_invalid(grid),
                             cmap="viridis_r" if low_is_good else "viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label=f"mean {objective}")
        ax.set_xlabel("lambda_mi")
        ax.set_ylabel("lambda_tc")
        ax.set_title(f"{objective} over the weights ({'lower' if low_is_good else 'higher'} is better)")
    return png_bytes(fig)


# -- training curves -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CurvesData:
    metric: str
    series: dict[str, tuple[np.ndarray, np.ndarray]]  # label -> (epochs, values)


def curves_data(curves: pa.Table, trials: pa.Table, metric: str = "loss_total") -> CurvesData:
    labels = {r["trial_id"]: trial_label(r) for r in trials.to_pylist()}
    series: dict[str, tuple[list, list]] = {}
    for r in sorted(curves.to_pylist(), key=lambda r: (r["trial_number"], r["epoch"])):
        if r["metric"] == metric and r["trial_id"] in labels:
            xs, ys = series.setdefault(labels[r["trial_id"]], ([], []))
            xs.append(r["epoch"])
            ys.append(r["value"])
    return CurvesData(metric, {k: (np.array(x), np.array(y)) for k, (x, y) in series.items()})


def draw_curves(data: CurvesData) -> bytes:
    fig, ax = plt.subplots(figsize=(7.0, 4.0), dpi=110)
    for label, (x, y) in data.series.items():
        ax.plot(x, y, marker="o", ms=3, lw=1, label=label)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(data.metric)
    ax.set_title(f"Training curves: {data.metric}")
    ax.grid(alpha=0.3)
    if 0 < len(data.series) <= 12:
        ax.legend(fontsize=6)
    return png_bytes(fig)


# -- latent traversals ---------------------------------------------------------------------------
def draw_traversal(images: np.ndarray, values: np.ndarray, title: str,
                   row_labels: Sequence[str] | None = None) -> bytes:
    """``images (d, steps, C, H, W)`` in [0, 1]: one row per latent, one column per value;
    ``row_labels`` name the rows (default ``z0``, ``z1``, ...); a label ending in "collapsed" is red."""
    d, steps = images.shape[:2]
    row_labels = list(row_labels) if row_labels is not None else [f"z{i}" for i in range(d)]
    fig, axes = plt.subplots(d, steps, figsize=(steps * 0.8 + 1.2, d * 0.8 + 0.4), dpi=100, squeeze=False)
    for i in range(d):
        for j in range(steps):
            ax = axes[i, j]
            ax.imshow(np.moveaxis(images[i, j], 0, -1).squeeze(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                collapsed = row_labels[i].endswith("collapsed")
                ax.set_ylabel(row_labels[i].replace(" collapsed", "\ncollapsed"), fontsize=6, rotation=0,
                              ha="right", va="center", color="tab:red" if collapsed else "black")
            if i == d - 1:
                ax.set_xlabel(f"{values[j]:+.1f}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return png_bytes(fig)
