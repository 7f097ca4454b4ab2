"""Arrow schemas of the run's Parquet tables, versioned in the schema metadata.

A reader refuses a table written by a newer schema version rather than misreading it.
"""

from __future__ import annotations

import pyarrow as pa

from disentune.errors import UserError

SCHEMA_VERSION = 1
_VERSION_KEY = b"disentune.schema_version"
_NAME_KEY = b"disentune.table"


def _schema(name: str, fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema(fields, metadata={_NAME_KEY: name.encode(), _VERSION_KEY: str(SCHEMA_VERSION).encode()})


# the searched parameters every trials table carries (config.SEARCHABLE, minus the seed)
PARAMETERS: list[tuple[str, pa.DataType]] = [
    ("variant", pa.string()),
    ("lambda_mi", pa.float64()),
    ("lambda_tc", pa.float64()),
    ("lr", pa.float64()),
    ("latent_dim", pa.int64()),
    ("batch_size", pa.int64()),
    ("scale_tied_codes", pa.bool_()),
    ("c_max", pa.float64()),
    ("anneal_steps", pa.int64()),
]
DEFAULT_OBJECTIVES = ("fid", "mig")
SPREAD = ("min", "max", "iqr")  # of an objective over a trial's replicates


def trials_schema(objectives: tuple[str, ...] = DEFAULT_OBJECTIVES) -> pa.Schema:
    """One row per trial (a configuration): its parameters, status, and per objective the median
    over its replicates with ``_min``, ``_max`` and ``_iqr`` (equal to it, and 0, unreplicated).
    ``trial_id``, ``seed`` and ``checkpoint_uri`` are those of its first successful replicate."""
    return _schema("trials", [
        ("run_id", pa.string()), ("trial_number", pa.int64()), ("trial_id", pa.string()),
        *PARAMETERS, ("seed", pa.int64()), ("replicates", pa.int64()), ("replicates_ok", pa.int64()),
        ("seeds", pa.list_(pa.int64())), ("status", pa.string()), ("error", pa.string()),
        *[(f"{o}{suffix}", pa.float64()) for o in objectives for suffix in ("", *(f"_{s}" for s in SPREAD))],
        ("fid_extractor", pa.string()), ("epochs", pa.int64()), ("images_seen", pa.int64()),
        ("stopped_at_images", pa.int64()),  # early stopping (search.scheduler): the budget reached
        ("train_seconds", pa.float64()), ("eval_seconds", pa.float64()), ("startup_seconds", pa.float64()),
        ("wall_seconds", pa.float64()), ("checkpoint_uri", pa.string()), ("code_version", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ])


def replicates_schema(objectives: tuple[str, ...] = DEFAULT_OBJECTIVES) -> pa.Schema:
    """One row per replicate: which trial, its index and seed, status and objectives."""
    return _schema("replicates", [
        ("run_id", pa.string()), ("trial_number", pa.int64()), ("replicate", pa.int64()),
        ("trial_id", pa.string()), ("seed", pa.int64()), ("status", pa.string()), ("error", pa.string()),
        *[(o, pa.float64()) for o in objectives],
        ("epochs", pa.int64()), ("images_seen", pa.int64()), ("train_seconds", pa.float64()),
        ("checkpoint_uri", pa.string()),
    ])


def pareto_schema(objectives: tuple[str, ...] = DEFAULT_OBJECTIVES) -> pa.Schema:
    return _schema("pareto", [
        ("run_id", pa.string()), ("trial_number", pa.int64()), ("trial_id", pa.string()),
        *[(o, pa.float64()) for o in objectives],
        ("rank", pa.int64()), ("on_front", pa.bool_()), ("hv_contribution", pa.float64()), ("knee", pa.bool_()),
        ("hypervolume_so_far", pa.float64()), *[(f"reference_{o}", pa.float64()) for o in objectives],
    ])


TRIALS = trials_schema()
REPLICATES = replicates_schema()
PARETO = pareto_schema()


CURVES = _schema("curves", [  # long format: one row per (trial, epoch, metric)
    ("run_id", pa.string()),
    ("trial_number", pa.int64()),
    ("trial_id", pa.string()),
    ("epoch", pa.int64()),
    ("metric", pa.string()),
    ("value", pa.float64()),
])

EVALUATIONS = _schema("evaluations", [  # long format: one row per (model, metric value)
    ("run_id", pa.string()),
    ("trial_number", pa.int64()),
    ("replicate", pa.int64()),  # which of the trial's replicates (0 unreplicated)
    ("trial_id", pa.string()),  # the replicate's own id
    ("suite_metric", pa.string()),  # the registered metric that produced the value (dci, ...)
    ("metric", pa.string()),  # the value's name (dci_completeness, ...)
    ("value", pa.float64()),
    ("params", pa.string()),  # JSON: sample sizes, bins, extractor name and hash, versions, details
    ("seed", pa.int64()),
    ("seconds", pa.float64()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])

ANOMALY_METRICS = _schema("anomaly_metrics", [
    ("trial_id", pa.string()),  # the replicate's own id
    ("trial_number", pa.int64()),
    ("replicate", pa.int64()),
    ("detector", pa.string()),
    ("feature_space", pa.string()),
    ("benchmark", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
    ("n_normal", pa.int64()),
    ("n_anomalous", pa.int64()),
    ("seed", pa.int64()),
    ("fit_seconds", pa.float64()),
    ("score_seconds", pa.float64()),
])


ANOMALY_SCORES = _schema("anomaly_scores", [  # one row per test sample: any metric can be recomputed
    ("trial_id", pa.string()),
    ("trial_number", pa.int64()),
    ("replicate", pa.int64()),
    ("detector", pa.string()),
    ("feature_space", pa.string()),
    ("benchmark", pa.string()),
    ("sample", pa.int64()),
    ("label", pa.int8()),  # 1 = anomalous
    ("score", pa.float64()),  # higher = more anomalous
    ("subset_size", pa.int64()),  # subset scanning: nodes in the best subset (null otherwise)
    ("alpha", pa.float64()),  # subset scanning: the maximising alpha (null otherwise)
    ("seed", pa.int64()),
])


def check_version(schema: pa.Schema, where: str) -> None:
    """Refuse a table from a newer schema version (or one that is not a disentune table)."""
    meta = schema.metadata or {}
    if _VERSION_KEY not in meta:
        raise UserError(f"{where}: not a disentune table (no schema version)")
    version = int(meta[_VERSION_KEY])
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{where}: written by schema version {version}, newer than this disentune "
            f"({SCHEMA_VERSION}); upgrade disentune to read it"
        )
