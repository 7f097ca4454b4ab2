"""Runs, tables and reports on a real S3 API: moto's server on 127.0.0.1, reached by s3fs,
pyarrow and Ray Tune exactly as they would reach AWS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .loopback import free_port, wait_for_port

pytestmark = pytest.mark.integration

FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEKEYFORTESTS01", "AWS_SECRET_ACCESS_KEY": "fake/secret/for+tests/only",
             "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    if not wait_for_port(port, 30):
        proc.kill()
        raise RuntimeError("moto_server did not start")
    saved = {k: os.environ.get(k) for k in [*FAKE_KEYS, "AWS_ENDPOINT_URL"]}
    os.environ.update(FAKE_KEYS, AWS_ENDPOINT_URL=endpoint)
    yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def s3(s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="runs")  # boto3: s3fs's mkdir sends a location constraint moto refuses
    return client


def keys(client, bucket="runs", prefix=""):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def _secrets_in(data: bytes) -> list[str]:
    return [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if FAKE_KEYS[k].encode() in data]


def test_sweep_and_report_round_trip_through_s3(s3, dsprites32, capfd):
    import ray

    from disentune.config import experiment_from_dict
    from disentune.reports.build import build_report
    from disentune.reports.storage import read_table
    from disentune.pipeline import run_sweep

    exp = experiment_from_dict({
        "name": "s3run", "seed": 5,
        "data": {"resolution": 32, "train_size": 192},
        "train": {"epochs": 2},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "suite": ["mig", "kid"],
                       "metric_params": {"mig": {"num_points": 300},
                                         "kid": {"num_points": 64, "num_subsets": 5, "subset_size": 32}}},
        "search": {"num_samples": 2, "max_concurrent_trials": 2},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    })
    # a journal cached by an earlier sweep to the same location must not leak into this study
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from disentune.pipeline import journal_path

    stale = journal_path("s3://runs/sweeps/s3run")
    stale.parent.mkdir(parents=True, exist_ok=True)
    old = optuna.create_study(study_name="s3run", directions=["minimize", "maximize"],
                              storage=JournalStorage(JournalFileBackend(str(stale))))
    old.add_trial(optuna.trial.create_trial(values=[0.0, 1.0]))  # would dominate every real trial

    ray.init("local", num_cpus=2, include_dashboard=False)
    try:
        result = run_sweep(exp, out="s3://runs/sweeps/s3run")
        session_dir = Path(ray._private.worker._global_node.get_session_dir_path())
    finally:
        ray.shutdown()
    # no credential in the sweep's own output, nor in any log of the Ray processes that ran it
    printed = capfd.readouterr()
    assert _secrets_in((printed.out + printed.err).encode()) == []
    logs = [f for f in (session_dir / "logs").rglob("*") if f.is_file()]
    assert logs and {f.name: _secrets_in(f.read_bytes()) for f in logs if _secrets_in(f.read_bytes())} == {}
    assert result.run_uri == "s3://runs/sweeps/s3run"
    stored = keys(s3, prefix="sweeps/s3run/")
    for name in ("trials.parquet", "pareto.parquet", "curves.parquet", "index.html", "experiment.json",
                 "optuna.journal", "figures/pareto.png"):
        assert f"sweeps/s3run/{name}" in stored, stored
    # the metric suite ran after the sweep as Ray tasks that read checkpoints from and wrote to S3
    assert result.evaluation is not None and not result.evaluation.failed, result.evaluation.summary()
    assert sum(k.startswith("sweeps/s3run/evaluations.parquet/part-") for k in stored) == 2 * 2
    from disentune.evaluate import read_evaluations

    evaluations = read_evaluations("s3://runs/sweeps/s3run").to_pandas()
    assert sorted(evaluations["metric"].unique()) == ["kid", "mig"] and len(evaluations) == 4
    assert any(k.startswith("sweeps/s3run/tune/") for k in stored)  # Tune's own storage follows
    trials = read_table("s3://runs/sweeps/s3run/trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert trials["checkpoint_uri"].str.startswith("s3://runs/sweeps/s3run/tune/").all()
    for uri in trials["checkpoint_uri"]:
        assert f"{uri.removeprefix('s3://runs/')}/state.pt" in stored
    # rebuild the report from S3 alone: front sections load their checkpoints from the bucket
    paths = build_report("s3://runs/sweeps/s3run")
    page = s3.get_object(Bucket="runs", Key="sweeps/s3run/index.html")["Body"].read().decode()
    assert page.count("<figcaption>Latent traversal") == len(paths.front) > 0
    assert paths.optuna_front == paths.front
    # no credential in any stored output: tables, report, journal, Tune's state and checkpoints
    for key in keys(s3, prefix="sweeps/s3run/"):
        assert _secrets_in(s3.get_object(Bucket="runs", Key=key)["Body"].read()) == [], key


def _cli(args, env):
    return subprocess.run([sys.executable, "-m", "disentune", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_missing_bucket_and_unreachable_endpoint_are_one_line_errors(s3, tmp_path):
    space = Path(__file__).resolve().parents[2] / "search_spaces" / "quickstart.yaml"
    before = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    proc = _cli(["sweep", str(space), "--out", "s3://no-such-bucket/run"], {})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "disentune: error: s3://no-such-bucket/run: the bucket does not exist"
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == before

    began = time.perf_counter()
    nowhere = f"http://127.0.0.1:{free_port()}"
    proc = _cli(["--endpoint-url", nowhere, "sweep", str(space), "--out", "s3://runs/unreachable"], {})
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()  # the probe retries for storage.PROBE_RETRY_S (10 s), quietly
    assert line.startswith(f"disentune: error: s3://runs/unreachable: cannot reach the storage endpoint ({nowhere})")
    assert "\n" not in line and FAKE_KEYS["AWS_SECRET_ACCESS_KEY"] not in line
    assert time.perf_counter() - began < 60
    assert keys(s3, prefix="unreachable") == []


def test_parallel_part_writers_on_s3_lose_no_rows(s3):
    """The storage path evaluators and detectors append to: part files in a bucket prefix."""
    import concurrent.futures as cf

    import pyarrow as pa

    from disentune.reports import schema
    from disentune.reports.storage import append_table, read_dataset

    def rows(i):
        return pa.Table.from_pylist([
            {"trial_id": f"t{i}", "detector": "knn", "feature_space": "latent", "benchmark": "b",
             "metric": "auroc", "value": 0.5, "n_normal": 1, "n_anomalous": 1, "seed": i,
             "fit_seconds": 0.0, "score_seconds": 0.0} for _ in range(3)], schema=schema.ANOMALY_METRICS)

    with cf.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: append_table(rows(i), "s3://runs/parts/anomaly_metrics.parquet"), range(12)))
    table = read_dataset("s3://runs/parts/anomaly_metrics.parquet", schema.ANOMALY_METRICS)
    assert table.num_rows == 36 and sorted(set(table["seed"].to_pylist())) == list(range(12))
    assert len(keys(s3, prefix="parts/anomaly_metrics.parquet/")) == 12


def test_a_killed_driver_of_an_s3_run_continues_with_resume(s3, tmp_path, dsprites32):
    """The README's promise on S3: SIGKILL the driver after two checkpoints; the same command is
    refused without --resume and finishes with it, every trial once, each at its full budget."""
    import signal

    import yaml

    from disentune.reports.storage import read_table

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": "s3resume", "seed": 3, "data": {"resolution": 32, "train_size": 1024},
        "train": {"epochs": 4}, "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"},
        "search": {"num_samples": 3, "max_concurrent_trials": 1},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    }))
    out = "s3://runs/resumed"
    command = [sys.executable, "-m", "disentune", "sweep", str(space), "--out", out]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            checkpoints = [k for k in keys(s3, prefix="resumed/tune/") if k.endswith("/state.pt")]
            if len(checkpoints) >= 2:
                break
            time.sleep(0.5)
        assert len(checkpoints) >= 2, "no two checkpoints before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        driver.wait(timeout=60)
    assert "resumed/trials.parquet" not in keys(s3, prefix="resumed/")
    refused = _cli(["sweep", str(space), "--out", out], {})
    assert refused.returncode == 2 and "--resume" in refused.stderr, refused.stderr
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = read_table(f"{out}/trials.parquet").to_pandas()
    assert sorted(trials["trial_number"]) == [0, 1, 2] and trials["trial_id"].is_unique
    assert (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert (trials["images_seen"] == 4 * 1024).all()
    assert trials["checkpoint_uri"].str.startswith(f"{out}/tune/").all()
    assert "Optuna's best_trials agree" in resumed.stdout, resumed.stdout[-2000:]
