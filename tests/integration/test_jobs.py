"""Ray job submission against a real head started with `ray start --head` on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .cluster import kill_processes, node_ports, processes_of
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
                    "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp}",
                    f"--ray-client-server-port={free_port()}", *node_ports()],  # no port of another Ray's
                   check=True, env=env, capture_output=True, timeout=180)
    address = f"http://127.0.0.1:{dashboard}"
    saved = os.environ.get("RAY_AUTH_MODE")
    try:
        assert wait_for_port(dashboard, 60), "the Ray dashboard (job API) did not start"
        _until_jobs_are_accepted(address, env)
        os.environ["RAY_AUTH_MODE"] = "token"
        yield address, env, temp
    finally:  # also when the head never became ready
        # this head only: `ray stop` would stop every Ray instance on the machine, other people's too
        kill_processes(processes_of(temp))
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def _until_jobs_are_accepted(address: str, env: dict, timeout: float = 120.0) -> None:
    """The dashboard answers before the head's job agent has registered with it; until then a
    submission fails with "No available agent to submit job" (seconds on a busy machine). Submit
    an empty job, as the tests do, until one runs."""
    deadline = time.time() + timeout
    while True:
        proc = subprocess.run([RAY, "job", "submit", "--address", address, "--", "true"],
                              capture_output=True, text=True, timeout=120, env=env)
        if proc.returncode == 0:
            return
        assert "No available agent" in proc.stdout + proc.stderr and time.time() < deadline, proc.stderr[-2000:]
        time.sleep(1.0)


ROOT = Path(__file__).resolve().parents[2]
TINY = ("name: jobsweep\nseed: 2\ndata: {resolution: 32, train_size: 192}\ntrain: {epochs: 1}\n"
        "evaluation: {fid_samples: 64, mig_samples: 300, suite: [mig], metric_params: {mig: {num_points: 300}}}\n"
        "search: {num_samples: SAMPLES, max_concurrent_trials: 2}\n"
        "space: {lambda_tc: {uniform: [0.0, 4.0]}, batch_size: 32, latent_dim: 3}\n")
MARKS = {  # file -> (line to find, marker printed right after it), in the driver, a trial, an evaluator
    "pipeline.py": ('    lines.append(f"report: {result.report.index}")\n', "MARK-driver"),
    "train/loop.py": ("    loop_started = time.time()\n", "MARK-trial"),
    "evaluate.py": ("    metric = METRICS.get(job.metric)\n", "MARK-evaluator"),
}


@pytest.fixture(scope="module")
def marked_copy(tmp_path_factory) -> Path:
    """A copy of this repository (git metadata included) with a marker edit in the driver's,
    a trial's and an evaluator's code: the code a researcher edits and submits."""
    import shutil

    copy = tmp_path_factory.mktemp("submitted") / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", "__pycache__", "test-artifacts", "*.egg-info",
                                                             ".pytest_cache"))
    shutil.rmtree(copy / "reports")
    for name, (anchor, mark) in MARKS.items():
        path = copy / "platform" / "disentune" / name
        text = path.read_text()
        assert anchor in text, f"{name}: the marker's anchor moved"
        indent = anchor[: len(anchor) - len(anchor.lstrip())]
        path.write_text(text.replace(anchor, f"{anchor}{indent}print({mark!r}, flush=True)\n", 1))
    return copy


def _marks_logged(temp: Path) -> dict[str, int]:
    """How often each mark is in the head's worker logs (``logs/worker-*.out``)."""
    text = "".join(f.read_text(errors="replace") for f in temp.rglob("worker-*.out"))
    return {mark: text.count(mark) for _, mark in MARKS.values()}


def _ran_everywhere(stdout: str, temp: Path, before: dict[str, int]) -> None:
    """The driver, a trial process and an evaluator task printed their marks during this job. A
    task's print reaches the job's log through Ray's log monitor, which may not have forwarded
    the last lines when the driver exits; the worker's own log file has it at once."""
    after = _marks_logged(temp)
    for _, mark in MARKS.values():
        assert mark in stdout or after[mark] > before[mark], (mark, stdout[-3000:])


def _tables_carry(out: Path, tree: str) -> None:
    """trials.parquet and every evaluations part name the submitted tree, as dirty."""
    import json

    trials = pq.read_table(out / "trials.parquet")
    assert trials.num_rows >= 1 and (trials.column("status").to_pylist() == ["ok"] * trials.num_rows)
    label = trials.column("code_version")[0].as_py()
    assert label.endswith(f".dirty.t{tree[:12]}"), label
    parts = [out / "trials.parquet", out / "pareto.parquet", *sorted((out / "evaluations.parquet").glob("part-*"))]
    assert len(parts) >= 3
    for part in parts:
        code = json.loads(pq.read_schema(part).metadata[b"disentune.code"])
        assert (code["tree"], code["dirty"]) == (tree, True), part
    stored = json.loads((out / "experiment.json").read_text())
    assert stored["code"]["tree"] == tree and stored["code"]["dirty"] is True


def test_a_job_runs_the_submitted_code_everywhere_and_records_it(head, tmp_path, marked_copy, dsprites32):
    from disentune.provenance import tree_hash

    address, env, temp = head
    tree = tree_hash(marked_copy / "platform" / "disentune")
    (marked_copy / "tiny.yaml").write_text(TINY.replace("SAMPLES", "2"))
    out = tmp_path / "run"
    began, logged = time.perf_counter(), _marks_logged(temp)
    secret = "fake/submitter/secret+key"  # the submitter's credentials stay on the submitter
    proc = subprocess.run([sys.executable, "-m", "disentune", "submit", str(marked_copy / "tiny.yaml"),
                           "--address", address, "--out", str(out), "--working-dir", str(marked_copy), "--follow"],
                          capture_output=True, text=True, timeout=600,
                          env={**env, "AWS_ACCESS_KEY_ID": "AKIAFAKESUBMITTER01", "AWS_SECRET_ACCESS_KEY": secret})
    seconds = time.perf_counter() - began
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    job_id = proc.stdout.splitlines()[0].removeprefix("submitted job ").strip()
    assert proc.stdout.rstrip().endswith(f"job {job_id}: SUCCEEDED")
    _ran_everywhere(proc.stdout, temp, logged)
    _tables_carry(out, tree)
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


def test_ray_job_submit_as_documented_runs_the_submitted_code(head, tmp_path, marked_copy, dsprites32):
    """...and the plugin in the working directory (examples/plugin, not installed on the nodes)
    travels with it: the job sweeps its sigma_vae."""
    import json

    from disentune.provenance import tree_hash

    address, env, temp = head
    (marked_copy / "one.yaml").write_text(TINY.replace("SAMPLES", "1").replace(
        "space: {", "space: {variant: sigma_vae, "))
    out = tmp_path / "run"
    runtime = subprocess.run([sys.executable, "-m", "disentune", "jobs", "runtime-env"], cwd=marked_copy,
                             capture_output=True, text=True, timeout=60, env=env, check=True).stdout
    shipped = json.loads(runtime)
    assert str(marked_copy / "examples" / "plugin" / "disentune_plugin_example") in shipped["py_modules"]
    assert "sigma_vae" in shipped["env_vars"]["DISENTUNE_PLUGINS"]
    logged = _marks_logged(temp)
    proc = subprocess.run([RAY, "job", "submit", "--address", address, "--working-dir", ".",
                           "--runtime-env-json", runtime, "--", "python", "-m", "disentune", "sweep", "one.yaml",
                           "--address", "auto", "--out", str(out)],
                          cwd=marked_copy, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    _ran_everywhere(proc.stdout, temp, logged)
    _tables_carry(out, tree_hash(marked_copy / "platform" / "disentune"))
    assert pq.read_table(out / "trials.parquet").column("variant").to_pylist() == ["sigma_vae"]


def _failed_job(address: str, runtime_env: dict) -> str:
    """Submit ``disentune sweep`` with ``runtime_env``; the job's last log line once it fails."""
    from ray.job_submission import JobSubmissionClient

    from disentune import jobs

    client = JobSubmissionClient(address)
    job = client.submit_job(entrypoint="python -m disentune sweep one.yaml --address auto --out never",
                            runtime_env=runtime_env)
    for chunk in jobs.follow(address, job, poll_seconds=1.0):
        pass
    assert chunk.strip().endswith("FAILED"), chunk
    return client.get_job_logs(job).strip().splitlines()[-1]


def test_a_job_refuses_code_it_was_not_given_and_a_missing_dependency(head, marked_copy, tmp_path):
    import json
    import shutil

    from disentune import jobs, provenance

    address, _, _ = head
    (marked_copy / "one.yaml").write_text(TINY.replace("SAMPLES", "1"))
    runtime = jobs.runtime_env(marked_copy)
    stated = json.loads(runtime["env_vars"][provenance.ENV])
    forged = {**runtime, "env_vars": {**runtime["env_vars"], provenance.ENV: json.dumps({**stated, "tree": "0" * 64})}}
    line = _failed_job(address, forged)
    assert line.startswith("disentune: error: the job's driver: runs disentune from ") and "not the submitted code" in line
    # a submitted tree that needs a package the nodes lack fails at once, naming the package
    needy = tmp_path / "needy"
    shutil.copytree(marked_copy, needy, ignore=shutil.ignore_patterns(".git"))
    project = needy / "pyproject.toml"
    project.write_text(project.read_text().replace('dependencies = [\n', 'dependencies = [\n    "nosuchpackage-for-tests>=1",\n'))
    line = _failed_job(address, jobs.runtime_env(needy))
    assert line.startswith("disentune: error: the job's driver: the Python environment lacks nosuchpackage-for-tests "
                           "(nosuchpackage-for-tests>=1; not installed)"), line


def test_bad_space_is_refused_before_submission(head, tmp_path):
    address, env, _ = head
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
