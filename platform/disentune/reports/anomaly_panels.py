"""The anomaly report panels: the creativity study's findings, drawn from their data objects.

:func:`anomaly_panels` is what the report calls: it reads the run's anomaly tables, computes each
panel's data object (:mod:`disentune.reports.anomaly_panel_data`, which defines every panel),
writes it as ``figures/<table>.parquet`` with the drawing as ``figures/<panel>.png``, and returns
``(caption, png)`` per panel drawn. A panel whose data is empty (no subset scanning, no pixel and
activation space to compare, no group scans) is left out. The ``draw_*`` functions only draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from disentune.reports.plots import png_bytes  # noqa: E402
from disentune.reports.anomaly_panel_data import (  # noqa: E402
    PanelData,
    activation_pixel_data,
    detector_objectives_data,
    layer_data,
    node_overlap_data,
    space_order,
    subset_size_data,
)

CAPTIONS = {
    "anomaly_subset_sizes": "Subset sizes of normal and anomalous test samples per benchmark and feature space",
    "anomaly_activation_vs_pixel":
        "Subset-scanning AUROC in activation space against pixel space, per trial and benchmark",
    "anomaly_node_overlap": "Overlap (Jaccard) of the nodes highlighted for anomalous and normal samples, per layer",
    "anomaly_detector_objectives": "Anomaly AUROC per detector against {x} and {y}",
    "anomaly_layers": "Subset-scanning AUROC per scanned layer",
}
ORDER = tuple(CAPTIONS)
_MARKERS = "osD^v<>pPX*h"


def caption(key: str, objectives: Sequence[tuple[str, str]] = (("fid", "min"), ("mig", "max"))) -> str:
    return CAPTIONS[key].format(x=objectives[0][0], y=objectives[1][0])



def _grid(n: int, cols: int, width: float, height: float) -> tuple[plt.Figure, list]:
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=100, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _short(space: str) -> str:
    return space.split(":", 1)[1] if space.startswith("activation:") else space


def draw_subset_sizes(data: PanelData) -> bytes:
    """One plot per feature space; per benchmark a box of normal and one of anomalous samples."""
    spaces = sorted({r["feature_space"] for r in data.rows}, key=space_order)
    benches = sorted({r["benchmark"] for r in data.rows})
    auroc = {(s["benchmark"], s["feature_space"]): s["size_auroc"] for s in data.tables["anomaly_subset_size_summary"]}
    fig, axes = _grid(len(spaces), 2, max(4.0, 0.9 * len(benches) + 1.5), 3.6)
    for ax, space in zip(axes, spaces):
        for label, colour, shift in ((0, "tab:blue", -0.2), (1, "tab:red", 0.2)):
            values, where = [], []
            for i, bench in enumerate(benches):
                picked = [r for r in data.rows if r["benchmark"] == bench and r["feature_space"] == space
                          and r["label"] == label]
                if picked:
                    values.append(np.repeat([r["subset_size"] for r in picked], [r["count"] for r in picked]))
                    where.append(i + shift)
            if values:
                box = ax.boxplot(values, positions=where, widths=0.35, patch_artist=True, showfliers=False)
                for patch in box["boxes"]:
                    patch.set_facecolor(colour)
                    patch.set_alpha(0.5)
            ax.plot([], [], color=colour, lw=6, alpha=0.5, label="anomalous" if label else "normal")
        ax.set_xticks(range(len(benches)))
        named = [(b, auroc.get((b, space), float("nan"))) for b in benches]
        ax.set_xticklabels([f"{b}\nsize AUROC {v:.2f}" if np.isfinite(v) else b for b, v in named],
                           fontsize=6, rotation=30, ha="right")
        ax.set_ylabel("nodes in the best subset")
        ax.set_title(space, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=6)
    fig.suptitle("Per-sample subset sizes: normal against anomalous", fontsize=9)
    return png_bytes(fig)


def draw_activation_vs_pixel(data: PanelData) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=100)
    benches = sorted({r["benchmark"] for r in data.rows})
    layers = sorted({r["feature_space"] for r in data.rows}, key=space_order)
    colours = plt.get_cmap("tab10")
    for r in data.rows:
        ax.scatter(r["auroc_pixel"], r["auroc_activation"], s=30, alpha=0.8,
                   marker=_MARKERS[benches.index(r["benchmark"]) % len(_MARKERS)],
                   color=colours(layers.index(r["feature_space"]) % 10))
    for i, bench in enumerate(benches):
        ax.scatter([], [], marker=_MARKERS[i % len(_MARKERS)], color="grey", label=bench)
    for i, layer in enumerate(layers):
        ax.scatter([], [], marker="s", color=colours(i % 10), label=_short(layer))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    above = sum(r["auroc_activation"] > r["auroc_pixel"] for r in data.rows)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="AUROC, pixel space", ylabel="AUROC, activation space",
           title=f"activation above pixel in {above} of {len(data.rows)} (trial, benchmark, layer)")
    ax.title.set_fontsize(8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    return png_bytes(fig)


def draw_node_overlap(data: PanelData) -> bytes:
    """Jaccard of the group scans' node subsets and of the frequent nodes, per layer and benchmark."""
    spaces = sorted({r["feature_space"] for r in data.rows}, key=space_order)
    benches = sorted({r["benchmark"] for r in data.rows}, key=lambda b: (b != "creative", b))
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.6 * len(spaces) + 3), 4.0), dpi=100, sharey=True)
    threshold = data.rows[0]["threshold"] if data.rows else 0.5
    for ax, column, title in ((axes[0], "jaccard_group", "group-scan node subsets"),
                              (axes[1], "jaccard_frequency", f"nodes in >= {threshold:g} of the samples' subsets")):
        for b, bench in enumerate(benches):
            offset = (b - (len(benches) - 1) / 2) * 0.6 / max(len(benches), 1)
            xs = [spaces.index(r["feature_space"]) + offset for r in data.rows if r["benchmark"] == bench]
            ys = [r[column] for r in data.rows if r["benchmark"] == bench]
            ax.scatter(xs, ys, s=22, color=colours(b % 10), label=bench, alpha=0.8)
        ax.set_xticks(range(len(spaces)))
        ax.set_xticklabels([_short(s) for s in spaces], fontsize=6, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(spaces) - 0.5)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(title, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Jaccard(anomalous, normal)")
    axes[1].legend(fontsize=6)
    fig.suptitle("Overlap of the nodes highlighted for anomalous and for normal samples", fontsize=9)
    return png_bytes(fig)


def draw_detector_objectives(data: PanelData) -> bytes:
    from disentune.reports.plots import axis_label

    series = sorted({(r["detector"], r["feature_space"]) for r in data.rows}, key=lambda s: (s[0], space_order(s[1])))
    colours = plt.get_cmap("tab20")
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), dpi=100, sharey=True)
    for ax, (name, direction), column in zip(axes, data.axes, ("x", "y")):
        for i, (detector, space) in enumerate(series):
            rows = sorted((r for r in data.rows if (r["detector"], r["feature_space"]) == (detector, space)),
                          key=lambda r: r[column])
            label = detector if space == "model" else f"{detector} ({_short(space)})"
            ax.plot([r[column] for r in rows], [r["auroc"] for r in rows], marker=_MARKERS[i % len(_MARKERS)],
                    ms=5, ls="none", color=colours(i % 20), label=label)
        ax.set_xlabel(axis_label(name, direction))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("AUROC (mean over benchmarks)")
    axes[1].legend(fontsize=6, loc="best")
    fig.suptitle("Anomaly detection per detector against the two objectives", fontsize=9)
    return png_bytes(fig)


def draw_layers(data: PanelData) -> bytes:
    """Per benchmark, each trial's AUROC along its scanned spaces by depth (``order``)."""
    benches = sorted({r["benchmark"] for r in data.rows})
    depth = max((r["order"] for r in data.rows), default=0) + 1
    names = [sorted({_short(r["feature_space"]) for r in data.rows if r["order"] == i}) for i in range(depth)]
    trials = sorted({r["trial_number"] for r in data.rows})
    colours = plt.get_cmap("tab10")
    fig, axes = _grid(len(benches), 4, max(3.2, 0.9 * depth + 1.2), 3.4)
    for ax, bench in zip(axes, benches):
        for t, number in enumerate(trials):
            rows = sorted((r for r in data.rows if r["benchmark"] == bench and r["trial_number"] == number),
                          key=lambda r: r["order"])
            ax.plot([r["order"] for r in rows], [r["auroc"] for r in rows], marker="o", ms=4,
                    lw=0.8, color=colours(t % 10), label=f"#{number}")
        ax.set_xticks(range(depth))
        ax.set_xticklabels(["\n".join(n) for n in names], fontsize=5, rotation=30, ha="right")
        ax.set_xlim(-0.5, depth - 0.5)
        ax.set_ylim(0, 1)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.set_title(bench, fontsize=8)
        ax.grid(alpha=0.3)
    if axes:
        axes[0].set_ylabel("subset-scanning AUROC")
        if len(trials) <= 12:
            axes[0].legend(fontsize=6)
    return png_bytes(fig)


DRAW = {"anomaly_subset_sizes": draw_subset_sizes, "anomaly_activation_vs_pixel": draw_activation_vs_pixel,
        "anomaly_node_overlap": draw_node_overlap, "anomaly_detector_objectives": draw_detector_objectives,
        "anomaly_layers": draw_layers}


@dataclass(frozen=True)
class Panel:
    key: str
    caption: str
    data: PanelData
    png: bytes


def panel_data(metrics: pa.Table | None, scores: pa.Table | None, groups: pa.Table | None, trials: pa.Table,
               objectives: Sequence[tuple[str, str]]) -> list[PanelData]:
    """Every panel's data object, in the report's order (empty ones included)."""
    return [subset_size_data(scores, trials), activation_pixel_data(metrics, trials), node_overlap_data(groups, trials),
            detector_objectives_data(metrics, trials, objectives), layer_data(metrics, groups, trials)]


def run_tables(run_uri: str) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The run's anomaly metrics, scores and group-scan tables (empty where not written)."""
    from disentune.anomaly.groups import GROUPS_TABLE
    from disentune.anomaly.runner import METRICS_TABLE, SCORES_TABLE
    from disentune.reports import schema
    from disentune.reports.anomaly_schema import ANOMALY_GROUPS
    from disentune.reports.storage import read_dataset
    from disentune.storage import join

    return (read_dataset(join(run_uri, METRICS_TABLE), schema.ANOMALY_METRICS),
            read_dataset(join(run_uri, SCORES_TABLE), schema.ANOMALY_SCORES),
            read_dataset(join(run_uri, GROUPS_TABLE), ANOMALY_GROUPS))


def build_panels(run_uri: str, trials: pa.Table, objectives: Sequence[tuple[str, str]]) -> list[Panel]:
    """The non-empty panels of the run, drawn (nothing written)."""
    metrics, scores, groups = run_tables(run_uri)
    if not metrics.num_rows:
        return []
    return [Panel(d.key, caption(d.key, objectives), d, DRAW[d.key](d))
            for d in panel_data(metrics, scores, groups, trials, objectives) if not d.empty]


def anomaly_panels(run_uri: str, trials: pa.Table,
                   objectives: Sequence[tuple[str, str]] = (("fid", "min"), ("mig", "max"))) -> list[tuple[str, bytes]]:
    """``[(caption, png), ...]`` of the run's anomaly panels; writes each panel's data tables as
    ``figures/<table>.parquet`` and its drawing as ``figures/<panel>.png``."""
    from disentune.reports.storage import write_table
    from disentune.storage import join, write_bytes

    panels = build_panels(run_uri, trials, objectives)
    for p in panels:
        for name, table in p.data.arrow().items():
            write_table(table, join(run_uri, "figures", f"{name}.parquet"))
        write_bytes(join(run_uri, "figures", f"{p.key}.png"), p.png)
    return [(p.caption, p.png) for p in panels]
