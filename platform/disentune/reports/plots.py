"""Figures, each computed as a small data object first and then drawn thinly with matplotlib."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


@dataclass(frozen=True)
class ParetoPlotData:
    """Points of a Pareto-front figure: fid (x, lower is better) against mig (y, higher is better)."""

    fid: np.ndarray
    mig: np.ndarray
    on_front: np.ndarray
    knee: np.ndarray
    labels: list[str]
    reference: tuple[float, float]
    title: str


def pareto_plot_data(trials: pa.Table, pareto: pa.Table, title: str) -> ParetoPlotData:
    """Join the Pareto table with the trials' weights to label every point."""
    by_id = {row["trial_id"]: row for row in trials.to_pylist()}
    rows = pareto.to_pylist()
    labels = [
        f"{by_id[r['trial_id']]['variant']} mi={by_id[r['trial_id']]['lambda_mi']:.2g} "
        f"tc={by_id[r['trial_id']]['lambda_tc']:.2g}"
        for r in rows
    ]
    ref = (rows[0]["reference_fid"], rows[0]["reference_mig"]) if rows else (np.nan, np.nan)
    return ParetoPlotData(
        fid=np.array([r["fid"] for r in rows], dtype=float),
        mig=np.array([r["mig"] for r in rows], dtype=float),
        on_front=np.array([r["on_front"] for r in rows], dtype=bool),
        knee=np.array([r["knee"] for r in rows], dtype=bool),
        labels=labels,
        reference=ref,
        title=title,
    )


def draw_pareto(data: ParetoPlotData, path: str) -> None:
    """Dominated points grey, the front joined as a staircase, front points labelled, knee ringed."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    dominated = ~data.on_front
    ax.scatter(data.fid[dominated], data.mig[dominated], c="0.65", s=28, label="dominated")
    order = np.argsort(data.fid[data.on_front])
    fx, fy = data.fid[data.on_front][order], data.mig[data.on_front][order]
    ax.step(fx, fy, where="post", color="tab:blue", lw=1.5)
    ax.scatter(fx, fy, c="tab:blue", s=40, zorder=3, label="Pareto front")
    if data.knee.any():
        ax.scatter(data.fid[data.knee], data.mig[data.knee], s=160, facecolors="none",
                   edgecolors="tab:red", lw=1.8, zorder=4, label="knee")
    for i in np.flatnonzero(data.on_front):
        ax.annotate(data.labels[i], (data.fid[i], data.mig[i]), textcoords="offset points",
                    xytext=(5, 4), fontsize=7)
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("FID (dataset-factor features; lower is better)")
    ax.set_ylabel("MIG (higher is better)")
    ax.set_title(data.title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
