"""Figures, each computed as a small data object first and then drawn thinly with matplotlib.

The ``*_data`` functions are pure (tables in, arrays out) and unit-tested; the ``draw_*``
functions only turn a data object into PNG bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def _png(fig: plt.Figure) -> bytes:
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
    """fid (x, lower is better) against mig (y, higher is better) of one or more runs."""

    fid: np.ndarray
    mig: np.ndarray
    on_front: np.ndarray
    knee: np.ndarray
    labels: list[str]
    run: list[str]
    title: str


def pareto_plot_data(trials: pa.Table, pareto: pa.Table, title: str, run: str = "") -> ParetoPlotData:
    """Join the Pareto table with the trials' weights to label every point."""
    by_id = {row["trial_id"]: row for row in trials.to_pylist()}
    rows = pareto.to_pylist()
    return ParetoPlotData(
        fid=np.array([r["fid"] for r in rows], dtype=float),
        mig=np.array([r["mig"] for r in rows], dtype=float),
        on_front=np.array([r["on_front"] for r in rows], dtype=bool),
        knee=np.array([r["knee"] for r in rows], dtype=bool),
        labels=[trial_label(by_id[r["trial_id"]]) for r in rows],
        run=[run] * len(rows),
        title=title,
    )


def draw_pareto(data: ParetoPlotData) -> bytes:
    """Dominated points grey, each run's front joined as a staircase and labelled, knee ringed."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    runs = list(dict.fromkeys(data.run))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for k, run in enumerate(runs):
        mine = np.array([r == run for r in data.run], dtype=bool)
        colour = colours[k % len(colours)]
        dominated = mine & ~data.on_front
        ax.scatter(data.fid[dominated], data.mig[dominated], c="0.65" if len(runs) == 1 else colour,
                   alpha=1.0 if len(runs) == 1 else 0.35, s=28, label=f"{run} dominated".strip())
        front = mine & data.on_front
        order = np.argsort(data.fid[front])
        fx, fy = data.fid[front][order], data.mig[front][order]
        ax.step(fx, fy, where="post", color=colour, lw=1.5)
        ax.scatter(fx, fy, c=colour, s=40, zorder=3, label=f"{run} Pareto front".strip())
        for i in np.flatnonzero(front):
            ax.annotate(data.labels[i], (data.fid[i], data.mig[i]), textcoords="offset points",
                        xytext=(5, 4), fontsize=7)
    if data.knee.any():
        ax.scatter(data.fid[data.knee], data.mig[data.knee], s=160, facecolors="none",
                   edgecolors="tab:red", lw=1.8, zorder=4, label="knee")
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("FID (dataset-factor features; lower is better)")
    ax.set_ylabel("MIG (higher is better)")
    ax.set_title(data.title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run whose every trial failed has nothing to label
        ax.legend(loc="best", fontsize=8)
    return _png(fig)


# -- hypervolume history -------------------------------------------------------------------------
@dataclass(frozen=True)
class HypervolumeData:
    trial_number: np.ndarray
    hypervolume: np.ndarray
    reference: tuple[float, float]


def hypervolume_data(pareto: pa.Table) -> HypervolumeData:
    rows = sorted(pareto.to_pylist(), key=lambda r: r["trial_number"])
    ref = (rows[0]["reference_fid"], rows[0]["reference_mig"]) if rows else (np.nan, np.nan)
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
    ax.set_title(f"Hypervolume so far (reference fid={data.reference[0]:.4g}, mig={data.reference[1]:.4g})",
                 fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


# -- objectives over the two weights ---------------------------------------------------------
@dataclass(frozen=True)
class HeatmapData:
    """Mean of each objective over a ``bins x bins`` grid of lambda_mi x lambda_tc (NaN: no trial)."""

    mi_edges: np.ndarray
    tc_edges: np.ndarray
    grids: dict[str, np.ndarray]  # objective -> (len(tc_edges)-1, len(mi_edges)-1)
    counts: np.ndarray


def heatmap_data(trials: pa.Table, bins: int = 6) -> HeatmapData:
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
    for objective in ("fid", "mig"):
        sums = np.zeros((bins, bins))
        np.add.at(sums, (iy, ix), np.array([r[objective] for r in rows], dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            grids[objective] = np.where(counts > 0, sums / counts, np.nan)
    return HeatmapData(mi_edges, tc_edges, grids, counts)


def draw_heatmaps(data: HeatmapData) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), dpi=110)
    for ax, (objective, grid) in zip(axes, data.grids.items()):
        mesh = ax.pcolormesh(data.mi_edges, data.tc_edges, np.ma.masked_invalid(grid),
                             cmap="viridis_r" if objective == "fid" else "viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label=f"mean {objective}")
        ax.set_xlabel("lambda_mi")
        ax.set_ylabel("lambda_tc")
        ax.set_title(f"{objective} over the weights ({'lower' if objective == 'fid' else 'higher'} is better)")
    return _png(fig)


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
    return _png(fig)


# -- anomaly detection against the objectives ------------------------------------------------
@dataclass(frozen=True)
class AnomalyData:
    """Mean AUROC of each trial (over detectors and benchmarks) next to its fid and mig."""

    fid: np.ndarray
    mig: np.ndarray
    auroc: np.ndarray
    labels: list[str]


def anomaly_data(anomaly: pa.Table, trials: pa.Table) -> AnomalyData:
    by_trial: dict[str, list[float]] = {}
    for r in anomaly.to_pylist():
        if r["metric"] == "auroc":
            by_trial.setdefault(r["trial_id"], []).append(r["value"])
    rows = [r for r in trials.to_pylist() if r["trial_id"] in by_trial and r["status"] == "ok"]
    return AnomalyData(
        fid=np.array([r["fid"] for r in rows], dtype=float),
        mig=np.array([r["mig"] for r in rows], dtype=float),
        auroc=np.array([np.mean(by_trial[r["trial_id"]]) for r in rows], dtype=float),
        labels=[trial_label(r) for r in rows],
    )


def draw_anomaly(data: AnomalyData) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), dpi=110, sharey=True)
    for ax, (name, x) in zip(axes, (("FID (lower is better)", data.fid), ("MIG (higher is better)", data.mig))):
        ax.scatter(x, data.auroc, c="tab:purple", s=30)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean anomaly AUROC")
    fig.suptitle("Anomaly detection against the two objectives")
    return _png(fig)


# -- latent traversals ---------------------------------------------------------------------------
def draw_traversal(images: np.ndarray, values: np.ndarray, title: str) -> bytes:
    """``images (d, steps, C, H, W)`` in [0, 1]: one row per latent, one column per value."""
    d, steps = images.shape[:2]
    fig, axes = plt.subplots(d, steps, figsize=(steps * 0.8, d * 0.8 + 0.4), dpi=100, squeeze=False)
    for i in range(d):
        for j in range(steps):
            ax = axes[i, j]
            ax.imshow(np.moveaxis(images[i, j], 0, -1).squeeze(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"z{i}", fontsize=7)
            if i == d - 1:
                ax.set_xlabel(f"{values[j]:+.1f}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _png(fig)
