import concurrent.futures as cf
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from disentune.errors import UserError
from disentune.reports import schema
from disentune.reports.storage import (
    append_table,
    read_dataset,
    read_table,
    write_table,
)
from disentune.storage import atomic_write, check_writable, write_bytes

from .synthetic import synthetic_trials


def _anomaly_rows(trial: str, n: int) -> pa.Table:
    return pa.Table.from_pylist([
        {"trial_id": trial, "detector": "knn", "feature_space": "latent", "benchmark": "b",
         "metric": "auroc", "value": i / n, "n_normal": 10, "n_anomalous": 5, "seed": 0,
         "fit_seconds": 0.1, "score_seconds": 0.1} for i in range(n)
    ], schema=schema.ANOMALY_METRICS)


def test_round_trip_keeps_schema_version_and_leaves_no_temporary_files(tmp_path):
    table = synthetic_trials(5)
    write_table(table, str(tmp_path / "run" / "trials.parquet"))
    back = read_table(str(tmp_path / "run" / "trials.parquet"))
    assert back.equals(table)
    assert back.schema.metadata[b"disentune.schema_version"] == b"1"
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["trials.parquet"]


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    uri = str(tmp_path / "trials.parquet")
    write_table(synthetic_trials(3), uri)

    class Boom(Exception):
        pass

    def bad_writer(table, where):
        raise Boom

    with pytest.raises(Boom):
        atomic_write(uri, lambda f: (f.write(b"PAR1 half a file"), bad_writer(None, None)))
    assert read_table(uri).num_rows == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials.parquet"]


def test_parallel_writers_never_lose_each_others_rows(tmp_path):
    dataset = str(tmp_path / "anomaly_metrics.parquet")
    with cf.ThreadPoolExecutor(8) as pool:
        parts = list(pool.map(lambda i: append_table(_anomaly_rows(f"t{i}", 5), dataset), range(16)))
    assert len(set(parts)) == 16
    table = read_dataset(dataset, schema.ANOMALY_METRICS)
    assert table.num_rows == 80 and len(set(table["trial_id"].to_pylist())) == 16


def test_missing_dataset_reads_empty(tmp_path):
    assert read_dataset(str(tmp_path / "nothing"), schema.ANOMALY_METRICS).num_rows == 0


def test_newer_schema_truncated_and_foreign_files_are_refused(tmp_path):
    newer = synthetic_trials(2)
    newer = newer.replace_schema_metadata({**newer.schema.metadata, b"disentune.schema_version": b"99"})
    pq.write_table(newer, tmp_path / "newer.parquet")
    with pytest.raises(UserError, match="schema version 99, newer than this disentune"):
        read_table(str(tmp_path / "newer.parquet"))
    good = tmp_path / "good.parquet"
    write_table(synthetic_trials(50), str(good))
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="not a readable Parquet file"):
        read_table(str(tmp_path / "cut.parquet"))
    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(UserError, match="not a disentune table"):
        read_table(str(tmp_path / "foreign.parquet"))
    with pytest.raises(UserError, match="no such table"):
        read_table(str(tmp_path / "missing.parquet"))


def test_unwritable_location_is_a_clear_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        check_writable(str(target))
    write_bytes(str(tmp_path / "a" / "b.txt"), b"ok")
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"ok"
    assert dt  # timestamps in synthetic rows are timezone-aware
