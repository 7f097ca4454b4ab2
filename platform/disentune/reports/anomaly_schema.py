"""Arrow schemas of the group-scan table and of the anomaly report panels' data tables.

Kept apart from :mod:`disentune.reports.schema` (which other tables' writers edit) but versioned the
same way: every schema carries the table name and ``schema.SCHEMA_VERSION`` in its metadata, so
:func:`disentune.reports.storage.read_table` / ``read_dataset`` check them like any other table.

- ``anomaly_groups.parquet`` (:data:`ANOMALY_GROUPS`, a part dataset written by the anomaly runner):
  one row per (model, ``subset_scan``, benchmark, feature space, group) with ``group`` one of
  ``normal`` (the normal test samples), ``anomalous`` (the anomalous ones) and ``all``; see
  :mod:`disentune.anomaly.groups` for the protocol.
- ``figures/<panel>.parquet``: the data object of each anomaly report panel
  (:mod:`disentune.reports.anomaly_panel_data` defines every column).
"""

from __future__ import annotations

import pyarrow as pa

from disentune.reports.schema import _schema

_MODEL = [("trial_id", pa.string()), ("trial_number", pa.int64()), ("replicate", pa.int64())]

ANOMALY_GROUPS = _schema("anomaly_groups", [
    *_MODEL,
    ("detector", pa.string()),  # subset_scan
    ("feature_space", pa.string()),  # pixel, activation:<layer>
    ("benchmark", pa.string()),
    ("group", pa.string()),  # normal | anomalous | all: which test samples were scanned
    ("n_samples", pa.int64()),  # test samples in the group (the group scan's rows)
    ("n_nodes", pa.int64()),  # J, nodes of the feature space (the group scan's columns)
    ("score", pa.float64()),  # the best sub-matrix's scan statistic (>= 0; 0: nothing found)
    ("alpha", pa.float64()),  # its maximising alpha (alpha_max where the score is 0)
    ("samples", pa.list_(pa.int64())),  # the sample subset: `sample` indices of anomaly_scores, ascending
    ("nodes", pa.list_(pa.int64())),  # the node subset: node (column) indices, ascending
    ("restart_scores", pa.list_(pa.float64())),  # converged score of each restart (restart 0 first)
    ("node_counts", pa.list_(pa.int32())),  # (J,): the group's samples whose per-sample subset holds node j
    ("selected_anomalous", pa.int64()),  # anomalous samples in the sample subset
    ("statistic", pa.string()),
    ("alpha_max", pa.float64()),
    ("restarts", pa.int64()),
    ("max_alphas", pa.int64()),  # null: every endpoint of the alpha grid
    ("max_iter", pa.int64()),
    ("seed", pa.int64()),  # the benchmark split's seed (restarts draw from it, the space and the group)
    ("scan_seconds", pa.float64()),
])

SUBSET_SIZES = _schema("anomaly_subset_sizes", [  # per model: a histogram of per-sample subset sizes
    ("trial_number", pa.int64()), ("replicate", pa.int64()), ("benchmark", pa.string()),
    ("feature_space", pa.string()), ("label", pa.int8()), ("subset_size", pa.int64()), ("count", pa.int64()),
])

SUBSET_SIZE_SUMMARY = _schema("anomaly_subset_size_summary", [  # per (benchmark, space)
    ("benchmark", pa.string()), ("feature_space", pa.string()), ("models", pa.int64()),
    ("n_normal", pa.int64()), ("n_anomalous", pa.int64()),
    ("mean_normal", pa.float64()), ("mean_anomalous", pa.float64()),
    ("median_normal", pa.float64()), ("median_anomalous", pa.float64()),
    ("size_auroc", pa.float64()),  # mean over models of the AUROC of subset size as the score
])

ACTIVATION_VS_PIXEL = _schema("anomaly_activation_vs_pixel", [
    ("trial_number", pa.int64()), ("benchmark", pa.string()), ("feature_space", pa.string()),
    ("auroc_pixel", pa.float64()), ("auroc_activation", pa.float64()), ("replicates", pa.int64()),
])

NODE_OVERLAP = _schema("anomaly_node_overlap", [
    ("trial_number", pa.int64()), ("replicate", pa.int64()), ("benchmark", pa.string()),
    ("feature_space", pa.string()), ("n_nodes", pa.int64()),
    ("nodes_normal", pa.int64()), ("nodes_anomalous", pa.int64()), ("jaccard_group", pa.float64()),
    ("frequent_normal", pa.int64()), ("frequent_anomalous", pa.int64()), ("jaccard_frequency", pa.float64()),
    ("jaccard_weighted", pa.float64()), ("threshold", pa.float64()),
])

DETECTOR_OBJECTIVES = _schema("anomaly_detector_objectives", [
    ("trial_number", pa.int64()), ("detector", pa.string()), ("feature_space", pa.string()),
    ("auroc", pa.float64()), ("benchmarks", pa.int64()),
    ("x_name", pa.string()), ("x", pa.float64()), ("y_name", pa.string()), ("y", pa.float64()),
])

LAYERS = _schema("anomaly_layers", [
    ("trial_number", pa.int64()), ("benchmark", pa.string()), ("feature_space", pa.string()),
    ("order", pa.int64()), ("n_nodes", pa.int64()), ("auroc", pa.float64()), ("replicates", pa.int64()),
    ("group_precision", pa.float64()), ("group_recall", pa.float64()),
])
