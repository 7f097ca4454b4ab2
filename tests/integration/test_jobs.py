"""Ray job submission against a real head started with `ray start --head` on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .loopback import free_port, wait_for_port

pytestmark = pytest.mark.integration
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    # the same auth mode for the head and every client of it (token auth reads ~/.ray/auth_token)
    # ... and the project's environment first on PATH, as on a cluster node where it is installed
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PATH": path}
    port, dashboard = free_port(), free_port()
    temp = tmp_path_factory.mktemp("ray")
    subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--num-cpus=2",
                    "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp}"],
                   check=True, env=env, capture_output=True, timeout=180)
    address = f"http://127.0.0.1:{dashboard}"
    assert wait_for_port(dashboard, 60), "the Ray dashboard (job API) did not start"
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    yield address, env
    subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


def test_submit_a_tiny_sweep_as_a_job_and_read_its_tables(head, tmp_path, dsprites32):
    address, env = head
    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny.yaml").write_text(
        "name: jobsweep\nseed: 2\ndata: {resolution: 32, train_size: 192}\ntrain: {epochs: 1}\n"
        "evaluation: {fid_samples: 64, mig_samples: 300, run_suite: never}\n"
        "search: {num_samples: 2, max_concurrent_trials: 2}\n"
        "space: {lambda_tc: {uniform: [0.0, 4.0]}, batch_size: 32, latent_dim: 3}\n")
    out = tmp_path / "run"
    began = time.perf_counter()
    secret = "fake/submitter/secret+key"  # the submitter's credentials stay on the submitter
    proc = subprocess.run([sys.executable, "-m", "disentune", "submit", str(work / "tiny.yaml"),
                           "--address", address, "--out", str(out), "--working-dir", str(work), "--follow"],
                          capture_output=True, text=True, timeout=600,
                          env={**env, "AWS_ACCESS_KEY_ID": "AKIAFAKESUBMITTER01", "AWS_SECRET_ACCESS_KEY": secret})
    seconds = time.perf_counter() - began
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    job_id = proc.stdout.splitlines()[0].removeprefix("submitted job ").strip()
    assert proc.stdout.rstrip().endswith(f"job {job_id}: SUCCEEDED")
    trials = pq.read_table(out / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "ok").all()
    assert (out / "index.html").exists()
    status = subprocess.run([sys.executable, "-m", "disentune", "jobs", "status", job_id, "--address", address],
                            capture_output=True, text=True, timeout=60, env=env)
    assert status.stdout.strip() == "SUCCEEDED"
    from ray.job_submission import JobSubmissionClient

    info = JobSubmissionClient(address).get_job_info(job_id)
    shown = proc.stdout + proc.stderr + repr(info) + "".join(
        f.read_text(errors="replace") for f in out.rglob("*") if f.is_file() and f.suffix in (".json", ".html"))
    assert secret not in shown and "AKIAFAKESUBMITTER01" not in shown
    print(f"job round trip: {seconds:.1f} s")


def test_bad_space_is_refused_before_submission(head, tmp_path):
    address, env = head
    (tmp_path / "bad.yaml").write_text("name: x\nspace: {lambda_tc: {uniform: [3, 1]}}\n")
    proc = subprocess.run([sys.executable, "-m", "disentune", "submit", str(tmp_path / "bad.yaml"),
                           "--address", address, "--out", str(tmp_path / "o"), "--working-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "inverted range" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unreachable_job_api_is_one_line(tmp_path):
    (tmp_path / "ok.yaml").write_text("name: x\n")
    proc = subprocess.run([sys.executable, "-m", "disentune", "jobs", "status", "raysubmit_x",
                           "--address", f"http://127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("disentune: error: http://127.0.0.1:") and len(proc.stderr.strip().splitlines()) == 1
