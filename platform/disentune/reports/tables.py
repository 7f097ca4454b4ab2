"""The run's result tables built from the search's outcomes: trials, replicates, curves, Pareto.

- ``trials.parquet``: one row per trial (a configuration Optuna proposed). Per objective, the
  median over the replicates that succeeded, and its spread (``_min``, ``_max``, ``_iqr``);
  ``replicates`` and ``replicates_ok`` count them, ``seeds`` lists every replicate's seed. A trial is
  ``ok`` when one replicate is; ``failed`` when all failed (``error`` joins their reasons);
  ``stopped`` when early stopping ended it (``stopped_at_images``: the budget it reached), which
  keeps it off the front.
- ``replicates.parquet``: one row per replicate (trial number, replicate index, its Tune trial id,
  seed, status, error, objectives, checkpoint): every replicate's seed and values are kept.
- ``curves.parquet``: per-epoch training metrics of every replicate, long format.
- ``pareto.parquet``: rank, front membership, hypervolume contribution and knee of every ``ok``
  trial, for the run's 2 or 3 objectives, with the reference point used.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from disentune.pareto import analyse
from disentune.reports import schema
from disentune.search.outcome import TrialOutcome

Objectives = Sequence[tuple[str, str]]  # (name, direction)
DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (("fid", "min"), ("mig", "max"))
PARAMETER_NAMES = [name for name, _ in schema.PARAMETERS]


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _group(outcomes: Sequence[TrialOutcome]) -> dict[int, list[TrialOutcome]]:
    groups: dict[int, list[TrialOutcome]] = {}
    for o in sorted(outcomes, key=lambda o: (o.number, o.replicate)):
        groups.setdefault(o.number, []).append(o)
    return groups


def trials_table(outcomes: Sequence[TrialOutcome], *, run_id: str, code_version: str,
                 objectives: Objectives = DEFAULT_OBJECTIVES, created_at: dt.datetime | None = None) -> pa.Table:
    """One row per trial, failed and stopped ones included (see the module docstring)."""
    from disentune.search.replicates import spread

    created_at = created_at or dt.datetime.now(dt.timezone.utc)
    names = tuple(name for name, _ in objectives)
    rows = []
    for number, replicates in _group(outcomes).items():
        ok = [o for o in replicates if o.status == "ok"]
        stopped = [o for o in replicates if o.status == "stopped"]
        lead = (ok or stopped or replicates)[0]
        m, p = lead.metrics, lead.params
        status = "ok" if ok else "stopped" if stopped else "failed"
        row = {
            "run_id": run_id, "trial_number": number, "trial_id": lead.trial_id,
            **{k: p.get(k) for k in PARAMETER_NAMES}, "seed": p.get("seed"),
            "replicates": len(replicates), "replicates_ok": len(ok), "seeds": [o.params.get("seed") for o in replicates],
            "status": status,
            "error": None if ok else "; ".join(dict.fromkeys(o.error or "unknown" for o in replicates)),
            "fid_extractor": m.get("fid_extractor"), "epochs": m.get("epoch"), "images_seen": m.get("images_seen"),
            "stopped_at_images": m.get("images_seen") if status == "stopped" else None,
            "train_seconds": _num(m.get("train_seconds")), "eval_seconds": _num(m.get("eval_seconds")),
            "startup_seconds": _num(m.get("startup_seconds")), "wall_seconds": _num(m.get("time_total_s")),
            "checkpoint_uri": lead.checkpoint_uri, "code_version": code_version, "created_at": created_at,
        }
        for name in names:
            values = [o.metrics[name] for o in (ok or stopped) if _finite(o.metrics.get(name))]
            stats = spread(values) if values else dict.fromkeys(("median", "min", "max", "iqr"), math.nan)
            row.update({name: stats["median"], f"{name}_min": stats["min"], f"{name}_max": stats["max"],
                        f"{name}_iqr": stats["iqr"]})
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema.trials_schema(names))


def replicates_table(outcomes: Sequence[TrialOutcome], *, run_id: str,
                     objectives: Objectives = DEFAULT_OBJECTIVES) -> pa.Table:
    """One row per replicate (see the module docstring)."""
    names = tuple(name for name, _ in objectives)
    rows = [{
        "run_id": run_id, "trial_number": o.number, "replicate": o.replicate, "trial_id": o.trial_id,
        "seed": o.params.get("seed"), "status": o.status, "error": o.error,
        **{name: _num(o.metrics.get(name)) for name in names},
        "epochs": o.metrics.get("epoch"), "images_seen": o.metrics.get("images_seen"),
        "train_seconds": _num(o.metrics.get("train_seconds")), "checkpoint_uri": o.checkpoint_uri,
    } for o in sorted(outcomes, key=lambda o: (o.number, o.replicate))]
    return pa.Table.from_pylist(rows, schema=schema.replicates_schema(names))


def curves_table(outcomes: Sequence[TrialOutcome], run_id: str = "") -> pa.Table:
    """Per-epoch metrics of every replicate, long format (trial, replicate's id, epoch, metric, value)."""
    rows = [
        {"run_id": run_id, "trial_number": o.number, "trial_id": o.trial_id, "epoch": int(h["epoch"]),
         "metric": key, "value": float(value)}
        for o in outcomes for h in o.history for key, value in h.items()
        if key != "epoch" and isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
    ]
    return pa.Table.from_pylist(rows, schema=schema.CURVES)


def pareto_table(trials: pa.Table, objectives: Objectives = DEFAULT_OBJECTIVES,
                 reference: Sequence[float] | None = None) -> pa.Table:
    """Non-domination rank, front membership, hypervolume contribution and knee of every ``ok``
    trial, with the reference point used and the hypervolume after each trial (trial order)."""
    names = tuple(name for name, _ in objectives)
    directions = [d for _, d in objectives]
    table = schema.pareto_schema(names)
    ok = sorted((r for r in trials.to_pylist() if r["status"] == "ok" and all(_finite(r.get(n)) for n in names)),
                key=lambda r: r["trial_number"])
    if not ok:
        return table.empty_table()
    a = analyse(np.array([[r[n] for n in names] for r in ok]), directions, reference)
    return pa.Table.from_pylist([
        {
            "run_id": r["run_id"], "trial_number": r["trial_number"], "trial_id": r["trial_id"],
            **{n: r[n] for n in names}, "rank": int(a.ranks[i]), "on_front": bool(a.ranks[i] == 0),
            "hv_contribution": float(a.contributions[i]), "knee": a.knee == i,
            "hypervolume_so_far": float(a.history[i]),
            **{f"reference_{n}": float(a.reference[k]) for k, n in enumerate(names)},
        }
        for i, r in enumerate(ok)
    ], schema=table)


def run_objectives(config: dict) -> tuple[tuple[str, str], ...]:
    """The run's objectives and directions from its ``experiment.json`` (fid/mig before them)."""
    stored = (config.get("experiment") or {}).get("search", {}).get("objectives")
    if not stored:
        return DEFAULT_OBJECTIVES
    return tuple((o["name"], o["direction"]) for o in stored)
