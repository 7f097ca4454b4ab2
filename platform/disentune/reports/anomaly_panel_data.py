"""Data objects of the anomaly report panels: the creativity study's findings, from the run's tables.

Cintas et al. 2021/2022 (group-based subset scanning of generative models) claim that anomalous
(creative) samples light up larger anomalous node subsets than normal ones, that activation space
detects them better than pixel space, and that the nodes highlighted for creative samples differ
from those of normal ones. Each function here turns ``anomaly_metrics``, ``anomaly_scores`` and
``anomaly_groups`` (and the trials table) into the small data object of one panel; its rows are
what ``figures/<panel>.parquet`` holds (schemas in :mod:`disentune.reports.anomaly_schema`).

Common rules: only trials whose status is ``ok`` count (rows are matched by ``trial_number``, by
``trial_id`` where that is missing); a missing ``replicate`` is 0; "subset scanning" rows are those
of ``detector == "subset_scan"``; the AUROC is the ``auroc`` metric. Feature spaces are ordered by
:func:`space_order` (pixel, latent, then image-side layers, then code-side layers, each in natural
name order, then model scores).

Panels:

- :func:`subset_size_data`: per model, benchmark, space and label, how many test samples have a
  per-sample best subset of each size (``counts``); per benchmark and space (``summary``) the
  pooled sample counts, means and medians of the sizes of normal and of anomalous samples, and
  ``size_auroc``: the mean over models (with both labels) of the AUROC of the subset size as the
  anomaly score (``P(size_anomalous > size_normal) + P(=)/2``).
- :func:`activation_pixel_data`: per trial, benchmark and activation space, the subset-scanning
  AUROC in that space and in pixel space, each the mean over the trial's replicates that have both.
- :func:`node_overlap_data`: per model, benchmark and space, with ``N_a``, ``N_n`` the node subsets
  of the group scans over the anomalous and over the normal test samples,
  ``jaccard_group = |N_a & N_n| / |N_a | N_n|``; with ``f_g[j] = node_counts_g[j] / n_samples_g``
  (the share of group ``g``'s samples whose per-sample subset holds node ``j``) and
  ``H_g = {j: f_g[j] >= threshold}`` (default 0.5, the nodes a majority highlights),
  ``jaccard_frequency = |H_a & H_n| / |H_a | H_n|``, and the threshold-free weighted Jaccard
  ``jaccard_weighted = sum_j min(f_a, f_n) / sum_j max(f_a, f_n)``. An empty union gives NaN; a
  model whose benchmark lacks normal or anomalous test samples has no row.
- :func:`detector_objectives_data`: per trial, detector and feature space, the AUROC averaged over
  benchmarks (each benchmark's value the mean over the trial's replicates), against the trial's
  first two objectives ``x`` and ``y``.
- :func:`layer_data`: per trial, benchmark and scanned space (pixel and every activation layer),
  the subset-scanning AUROC (mean over replicates), ``order`` the space's depth rank among the
  trial's own spaces (0 = pixel; models of different families line up by depth), the space's
  node count ``n_nodes`` (from the
  group scans) and the group scan over all test samples' ``group_precision`` (anomalous share of
  its sample subset, NaN when empty) and ``group_recall`` (share of the anomalous test samples in
  it), each a mean over the replicates that have one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa

from disentune.reports import anomaly_schema as S

SCAN = "subset_scan"
_SIDES = {"encoder": 0, "discriminator": 0, "decoder": 1, "generator": 1}


def _natural(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def space_order(space: str) -> tuple:
    """Sort key of a feature space: pixel, latent, image-side layers, code-side layers, model."""
    if space == "pixel":
        return (0,)
    if space == "latent":
        return (1,)
    if space.startswith("activation:"):
        layer = space.split(":", 1)[1]
        return (2, _SIDES.get(layer.split(".")[0], 2), _natural(layer))
    return (3, _natural(space))


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else float("nan")


def _ok_frame(table: pa.Table | None, trials: pa.Table, columns: Sequence[str] | None = None, **equal):
    """``table``'s rows of ok trials as a DataFrame (``trial_number`` filled in from ``trial_id``
    where missing, ``replicate`` None -> 0) whose columns equal ``equal``; only ``columns`` (and
    the keys) are read."""
    import pandas as pd
    import pyarrow.compute as pc

    if table is None or not table.num_rows:
        return pd.DataFrame(columns=["trial_number", "replicate", *(columns or ())])
    for name, value in equal.items():
        table = table.filter(pc.equal(table[name], value))
    keep = ["trial_id", "trial_number", "replicate", *[c for c in (columns or table.column_names)
                                                      if c not in ("trial_id", "trial_number", "replicate")]]
    frame = table.select(keep).to_pandas()
    ok = {r["trial_number"] for r in trials.to_pylist() if r["status"] == "ok"}
    numbers = {r["trial_id"]: r["trial_number"] for r in trials.to_pylist()}
    frame["trial_number"] = frame["trial_number"].where(frame["trial_number"].notna(), frame["trial_id"].map(numbers))
    frame = frame[frame["trial_number"].isin(ok)].copy()
    frame["trial_number"] = frame["trial_number"].astype("int64")
    frame["replicate"] = frame["replicate"].fillna(0).astype("int64")
    return frame


def _ok_rows(table: pa.Table | None, trials: pa.Table, **equal) -> list[dict]:
    """:func:`_ok_frame`'s rows as dicts (every column)."""
    frame = _ok_frame(table, trials, **equal)
    return [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


@dataclass(frozen=True)
class PanelData:
    """A panel's data object: its rows (``tables[name]`` rows, one schema per name)."""

    key: str
    tables: dict[str, list[dict]]
    axes: tuple[tuple[str, str], ...] = ()  # objectives, for the panel against them
    schemas: dict[str, pa.Schema] = field(default_factory=dict)

    def table(self, name: str | None = None) -> pa.Table:
        name = name or self.key
        return pa.Table.from_pylist(self.tables[name], schema=self.schemas[name])

    def arrow(self) -> dict[str, pa.Table]:
        return {name: self.table(name) for name in self.tables}

    @property
    def rows(self) -> list[dict]:
        return self.tables[self.key]

    @property
    def empty(self) -> bool:
        return not self.rows


# -- subset sizes -----------------------------------------------------------------------------
def subset_size_data(scores: pa.Table | None, trials: pa.Table) -> PanelData:
    from sklearn.metrics import roc_auc_score

    frame = _ok_frame(scores, trials, ["benchmark", "feature_space", "label", "subset_size"], detector=SCAN)
    frame = frame[frame["subset_size"].notna()].astype({"label": "int64", "subset_size": "int64"})
    model = ["benchmark", "feature_space", "trial_number", "replicate"]
    counts = frame.groupby([*model, "label", "subset_size"]).size().reset_index(name="count")
    rows = [{"trial_number": int(r.trial_number), "replicate": int(r.replicate), "benchmark": r.benchmark,
             "feature_space": r.feature_space, "label": int(r.label), "subset_size": int(r.subset_size),
             "count": int(r.count)} for r in counts.itertuples()]
    rows.sort(key=lambda r: (r["benchmark"], space_order(r["feature_space"]), r["trial_number"], r["replicate"],
                             r["label"], r["subset_size"]))
    summary = []
    for (bench, space), group in sorted(frame.groupby(["benchmark", "feature_space"]),
                                        key=lambda kv: (kv[0][0], space_order(kv[0][1]))):
        labels, sizes = group["label"].to_numpy(), group["subset_size"].to_numpy(dtype=float)
        normal, anomalous = sizes[labels == 0], sizes[labels == 1]
        per_model = [float(roc_auc_score(m["label"], m["subset_size"]))
                     for _, m in group.groupby(["trial_number", "replicate"]) if m["label"].nunique() == 2]
        summary.append({
            "benchmark": bench, "feature_space": space, "models": len(per_model),
            "n_normal": len(normal), "n_anomalous": len(anomalous),
            "mean_normal": float(normal.mean()) if len(normal) else float("nan"),
            "mean_anomalous": float(anomalous.mean()) if len(anomalous) else float("nan"),
            "median_normal": float(np.median(normal)) if len(normal) else float("nan"),
            "median_anomalous": float(np.median(anomalous)) if len(anomalous) else float("nan"),
            "size_auroc": _mean(per_model),
        })
    return PanelData("anomaly_subset_sizes", {"anomaly_subset_sizes": rows, "anomaly_subset_size_summary": summary},
                     schemas={"anomaly_subset_sizes": S.SUBSET_SIZES,
                              "anomaly_subset_size_summary": S.SUBSET_SIZE_SUMMARY})


# -- activation against pixel space --------------------------------------------------------------
def _scan_auroc(metrics: pa.Table | None, trials: pa.Table) -> dict[tuple, float]:
    """(trial_number, replicate, benchmark, space) -> the subset-scanning AUROC."""
    return {(r["trial_number"], r["replicate"], r["benchmark"], r["feature_space"]): r["value"]
            for r in _ok_rows(metrics, trials, detector=SCAN, metric="auroc")}


def activation_pixel_data(metrics: pa.Table | None, trials: pa.Table) -> PanelData:
    auroc = _scan_auroc(metrics, trials)
    pairs: dict[tuple, list[tuple[float, float]]] = {}
    for (number, rep, bench, space), value in auroc.items():
        pixel = auroc.get((number, rep, bench, "pixel"))
        if space.startswith("activation:") and pixel is not None:
            pairs.setdefault((number, bench, space), []).append((pixel, value))
    rows = [{"trial_number": k[0], "benchmark": k[1], "feature_space": k[2],
             "auroc_pixel": _mean(p for p, _ in v), "auroc_activation": _mean(a for _, a in v), "replicates": len(v)}
            for k, v in sorted(pairs.items(), key=lambda kv: (kv[0][0], kv[0][1], space_order(kv[0][2])))]
    return PanelData("anomaly_activation_vs_pixel", {"anomaly_activation_vs_pixel": rows},
                     schemas={"anomaly_activation_vs_pixel": S.ACTIVATION_VS_PIXEL})


# -- node overlap ----------------------------------------------------------------------------------
def node_overlap_data(groups: pa.Table | None, trials: pa.Table, *, threshold: float = 0.5) -> PanelData:
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in _ok_rows(groups, trials, detector=SCAN):
        by_key.setdefault((r["trial_number"], r["replicate"], r["benchmark"], r["feature_space"]), {})[r["group"]] = r
    rows = []
    for key in sorted(by_key, key=lambda k: (k[2], space_order(k[3]), k[0], k[1])):
        normal, anomalous = by_key[key].get("normal"), by_key[key].get("anomalous")
        if normal is None or anomalous is None or not normal["n_samples"] or not anomalous["n_samples"]:
            continue
        f_n = np.asarray(normal["node_counts"], dtype=float) / normal["n_samples"]
        f_a = np.asarray(anomalous["node_counts"], dtype=float) / anomalous["n_samples"]
        h_n, h_a = set(np.flatnonzero(f_n >= threshold).tolist()), set(np.flatnonzero(f_a >= threshold).tolist())
        top = float(np.maximum(f_a, f_n).sum())
        rows.append({
            "trial_number": key[0], "replicate": key[1], "benchmark": key[2], "feature_space": key[3],
            "n_nodes": int(normal["n_nodes"]), "nodes_normal": len(normal["nodes"]),
            "nodes_anomalous": len(anomalous["nodes"]),
            "jaccard_group": _jaccard(set(normal["nodes"]), set(anomalous["nodes"])),
            "frequent_normal": len(h_n), "frequent_anomalous": len(h_a), "jaccard_frequency": _jaccard(h_n, h_a),
            "jaccard_weighted": float(np.minimum(f_a, f_n).sum()) / top if top > 0 else float("nan"),
            "threshold": float(threshold),
        })
    return PanelData("anomaly_node_overlap", {"anomaly_node_overlap": rows},
                     schemas={"anomaly_node_overlap": S.NODE_OVERLAP})


# -- AUROC per detector against the objectives -----------------------------------------------------
def detector_objectives_data(metrics: pa.Table | None, trials: pa.Table,
                             objectives: Sequence[tuple[str, str]] = (("fid", "min"), ("mig", "max"))) -> PanelData:
    per_bench: dict[tuple, list[float]] = {}
    for r in _ok_rows(metrics, trials, metric="auroc"):
        key = (r["trial_number"], r["detector"], r["feature_space"], r["benchmark"])
        per_bench.setdefault(key, []).append(r["value"])
    per_series: dict[tuple, list[float]] = {}
    for (number, detector, space, _), values in per_bench.items():
        per_series.setdefault((number, detector, space), []).append(_mean(values))
    by_number = {r["trial_number"]: r for r in trials.to_pylist()}
    (xn, _), (yn, _) = objectives[0], objectives[1]

    def value(row: dict, name: str) -> float:
        v = row.get(name)
        return float("nan") if v is None else float(v)

    rows = [{"trial_number": k[0], "detector": k[1], "feature_space": k[2], "auroc": _mean(v), "benchmarks": len(v),
             "x_name": xn, "x": value(by_number[k[0]], xn), "y_name": yn, "y": value(by_number[k[0]], yn)}
            for k, v in sorted(per_series.items(), key=lambda kv: (kv[0][1], space_order(kv[0][2]), kv[0][0]))]
    return PanelData("anomaly_detector_objectives", {"anomaly_detector_objectives": rows},
                     axes=(tuple(objectives[0]), tuple(objectives[1])),
                     schemas={"anomaly_detector_objectives": S.DETECTOR_OBJECTIVES})


# -- AUROC per scanned layer -----------------------------------------------------------------------
def layer_data(metrics: pa.Table | None, groups: pa.Table | None, trials: pa.Table) -> PanelData:
    per: dict[tuple, list[float]] = {}
    for (number, _, bench, space), value in _scan_auroc(metrics, trials).items():
        per.setdefault((number, bench, space), []).append(value)
    nodes: dict[tuple, int] = {}
    found: dict[tuple, dict[str, dict]] = {}
    for r in _ok_rows(groups, trials, detector=SCAN):
        nodes.setdefault((r["trial_number"], r["feature_space"]), int(r["n_nodes"]))
        found.setdefault((r["trial_number"], r["replicate"], r["benchmark"], r["feature_space"]), {})[r["group"]] = r
    precision: dict[tuple, list[float]] = {}
    recall: dict[tuple, list[float]] = {}
    for (number, _, bench, space), g in found.items():
        if "all" not in g:
            continue
        chosen, hits = len(g["all"]["samples"]), g["all"]["selected_anomalous"]
        precision.setdefault((number, bench, space), []).append(hits / chosen if chosen else float("nan"))
        anomalous = g.get("anomalous", {}).get("n_samples") or 0
        recall.setdefault((number, bench, space), []).append(hits / anomalous if anomalous else float("nan"))
    own: dict[int, set[str]] = {}
    for number, _, space in per:
        own.setdefault(number, set()).add(space)
    order = {(n, s): i for n, spaces in own.items() for i, s in enumerate(sorted(spaces, key=space_order))}
    rows = [{"trial_number": k[0], "benchmark": k[1], "feature_space": k[2], "order": order[(k[0], k[2])],
             "n_nodes": nodes.get((k[0], k[2])), "auroc": _mean(v), "replicates": len(v),
             "group_precision": _mean(precision.get(k, [])), "group_recall": _mean(recall.get(k, []))}
            for k, v in sorted(per.items(), key=lambda kv: (kv[0][1], order[(kv[0][0], kv[0][2])], kv[0][0]))]
    return PanelData("anomaly_layers", {"anomaly_layers": rows}, schemas={"anomaly_layers": S.LAYERS})
