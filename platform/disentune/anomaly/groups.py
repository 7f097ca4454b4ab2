"""Group scans of a benchmark's test samples, and compact per-sample node sets (the creativity study).

Cintas et al. 2021/2022 ("Towards creativity characterization of generative models via group-based
subset scanning") scan *groups* of samples: the most anomalous sub-matrix samples x nodes of the
test samples' empirical p-values against the normal fit images (``subset_scan.scan_group``, iterative
ascent between the exact best node subset and the exact best sample subset). The protocol here,
for one (model, benchmark, feature space) of the ``subset_scan`` detector:

- p-values: those of the per-sample scan (``pvalues.empirical_pvalues`` of the test features
  against the detector's fitted background, same ``tails`` and convention), so both scans read
  the same ``(n_test, J)`` p-value ranges;
- three group scans, each with the detector's statistic and ``alpha_max``: over the **normal**
  test samples alone, over the **anomalous** ones alone (so the node subsets highlighted for
  normal and for anomalous, e.g. creative, samples can be compared), and over **all** test
  samples (does the sample subset it finds consist of the anomalies?);
- cost bound (:class:`GroupSettings`): ``restarts`` (restart 0 from all the group's samples, the
  others from random sample subsets), ``max_alphas`` (the alpha grid thinned to that many range
  endpoints, evenly by rank, plus ``alpha_max``) and ``max_iter`` ascent steps per restart. Each
  step costs ``O(|A| n J)`` for ``|A| <= max_alphas + 1`` levels; the defaults scan 1000 samples x
  1024 nodes in about 0.5 s per group on one core;
- restarts draw from ``np.random.default_rng([seed, crc32(space), group index])`` with ``seed`` the
  benchmark split's seed: a re-run gives the same subsets;
- node frequencies (no ``n x J`` masks stored): for each group, ``node_counts[j]`` = the number of
  the group's samples whose per-sample best node subset (``SampleScan.nodes``) contains node ``j``.

Sample subsets are stored as the ``sample`` indices of ``anomaly_scores.parquet`` (positions in
the benchmark's test set), node subsets as column indices of the feature space.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

GROUPS_TABLE = "anomaly_groups.parquet"
GROUP_NAMES: tuple[str, ...] = ("normal", "anomalous", "all")


@dataclass(frozen=True)
class GroupSettings:
    """The group scan's cost bound: restarts, alpha levels (None: all) and ascent steps per restart."""

    restarts: int = 5
    max_alphas: int | None = 50
    max_iter: int = 50

    @classmethod
    def from_config(cls, cfg: Any) -> GroupSettings:
        """From an ``AnomalyConfig``'s ``group_restarts``, ``group_max_alphas``, ``group_max_iter``
        where it has them, else the defaults."""
        return cls(int(getattr(cfg, "group_restarts", cls.restarts)),
                   getattr(cfg, "group_max_alphas", cls.max_alphas),
                   int(getattr(cfg, "group_max_iter", cls.max_iter)))


@dataclass(frozen=True)
class GroupResult:
    """One group scan: ``samples`` ``(k,)`` int64 test-sample indices and ``nodes`` ``(m,)`` int64 node
    indices of the best sub-matrix, its ``score`` and ``alpha``; ``node_counts`` ``(J,)`` int64 the
    per-sample node frequencies of the group's ``n_samples`` samples; ``selected_anomalous`` how
    many of ``samples`` are anomalous."""

    group: str
    n_samples: int
    n_nodes: int
    score: float
    alpha: float
    samples: np.ndarray
    nodes: np.ndarray
    restart_scores: tuple[float, ...]
    node_counts: np.ndarray
    selected_anomalous: int = 0  # anomalous samples among ``samples``
    seconds: float = 0.0


def _numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def scan_groups(pmin: Any, pmax: Any, labels: np.ndarray, sample_nodes: np.ndarray, *, statistic: str,
                alpha_max: float, settings: GroupSettings, entropy: Sequence[int]) -> tuple[GroupResult, ...]:
    """The three group scans of the module docstring over p-value ranges ``pmin, pmax`` ``(n, J)``.

    ``labels`` ``(n,)`` 1 = anomalous; ``sample_nodes`` ``(n, J)`` bool the per-sample best subsets;
    ``entropy`` seeds the restarts (one generator per group). A group without samples scores 0
    with empty subsets.
    """
    from disentune.anomaly.subset_scan import scan_group

    lo = _numpy(pmin)
    hi = lo if pmax is None else _numpy(pmax)
    labels, sample_nodes = np.asarray(labels), np.asarray(sample_nodes, dtype=bool)
    n, num = lo.shape
    if labels.shape != (n,) or sample_nodes.shape != (n, num):
        raise ValueError(f"labels {labels.shape} and node masks {sample_nodes.shape} must match p-values {lo.shape}")
    members = {"normal": labels == 0, "anomalous": labels == 1, "all": np.ones(n, bool)}
    out = []
    for index, name in enumerate(GROUP_NAMES):
        rows = np.flatnonzero(members[name])
        counts = sample_nodes[rows].sum(axis=0).astype(np.int64)
        began = time.perf_counter()
        if not len(rows):
            out.append(GroupResult(name, 0, num, 0.0, float(alpha_max), np.zeros(0, np.int64),
                                   np.zeros(0, np.int64), (), counts, 0, 0.0))
            continue
        found = scan_group(lo[rows], hi[rows], statistic=statistic, alpha_max=alpha_max,
                           restarts=settings.restarts, rng=np.random.default_rng([*entropy, index]),
                           max_iter=settings.max_iter, max_alphas=settings.max_alphas)
        chosen = rows[found.samples].astype(np.int64)
        out.append(GroupResult(name, len(rows), num, float(found.score), float(found.alpha), chosen,
                               np.flatnonzero(found.nodes).astype(np.int64),
                               tuple(float(s) for s in found.restart_scores), counts,
                               int((labels[chosen] == 1).sum()), time.perf_counter() - began))
    return tuple(out)


def space_entropy(seed: int, space: str) -> tuple[int, int]:
    return int(seed), zlib.crc32(space.encode())


def group_rows(common: dict, space: str, groups: Sequence[GroupResult], *, statistic: str, alpha_max: float,
               settings: GroupSettings) -> list[dict]:
    """Rows of ``anomaly_groups.parquet`` (``common``: trial_id, trial_number, replicate, detector,
    benchmark, seed) for one feature space's group scans."""
    return [{
        **common, "feature_space": space, "group": g.group, "n_samples": g.n_samples, "n_nodes": g.n_nodes,
        "score": g.score, "alpha": g.alpha, "samples": g.samples.tolist(), "nodes": g.nodes.tolist(),
        "restart_scores": list(g.restart_scores), "node_counts": g.node_counts.astype(np.int32).tolist(),
        "selected_anomalous": g.selected_anomalous,
        "statistic": statistic, "alpha_max": float(alpha_max), "restarts": settings.restarts,
        "max_alphas": settings.max_alphas, "max_iter": settings.max_iter, "scan_seconds": g.seconds,
    } for g in groups]


def groups_table(rows: list[dict]) -> pa.Table:
    from disentune.reports.anomaly_schema import ANOMALY_GROUPS

    return pa.Table.from_pylist(rows, schema=ANOMALY_GROUPS)


def results_from_table(table: pa.Table) -> dict[tuple[str, str, str, str], GroupResult]:
    """The group scans of a groups table by (trial_id, benchmark, feature_space, group)."""
    out = {}
    for r in table.to_pylist():
        out[(r["trial_id"], r["benchmark"], r["feature_space"], r["group"])] = GroupResult(
            r["group"], r["n_samples"], r["n_nodes"], r["score"], r["alpha"], np.asarray(r["samples"], np.int64),
            np.asarray(r["nodes"], np.int64), tuple(r["restart_scores"]), np.asarray(r["node_counts"], np.int64),
            r["selected_anomalous"], r["scan_seconds"])
    return out


def read_groups(run_uri: str) -> pa.Table:
    """The run's ``anomaly_groups.parquet`` (empty, with its schema, where none was written)."""
    from disentune.reports.anomaly_schema import ANOMALY_GROUPS
    from disentune.reports.storage import read_dataset
    from disentune.storage import join

    return read_dataset(join(run_uri, GROUPS_TABLE), ANOMALY_GROUPS)


def part_name(key: str) -> str:
    """The file name ``storage.append_table`` gives the part written with ``key``."""
    return f"part-{hashlib.sha256(key.encode()).hexdigest()[:32]}.parquet"


def written_parts(dataset_uri: str) -> set[str]:
    """File names of a dataset folder's parts (without reading them; empty if it does not exist)."""
    from disentune.storage import filesystem, storage_error

    fs, path = filesystem(dataset_uri)
    try:
        return {p.rsplit("/", 1)[-1] for p in fs.find(path)
                if p.rsplit("/", 1)[-1].startswith("part-") and p.endswith(".parquet")}
    except FileNotFoundError:
        return set()
    except Exception as err:  # noqa: BLE001
        raise storage_error(dataset_uri, err) from None
