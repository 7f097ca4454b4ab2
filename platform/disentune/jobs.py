"""Ray job submission: run a sweep on a cluster as a Ray job (wraps Ray's JobSubmissionClient).

The search space is validated here first, so a bad space fails in one line before anything is
uploaded; the job then runs ``python -m disentune sweep`` on the cluster with ``--address auto``.

The job runs the submitted code, not the copy installed on the nodes (which only provides the
dependencies): the runtime environment uploads ``platform/disentune`` as a ``py_modules`` entry,
which Ray puts first on the path of the driver and of every worker process on every node (trial
processes, Ray Train workers, evaluator and detector tasks). The submitter also computes the code
version (commit, dirty flag, tree hash; :mod:`disentune.provenance`) and hands it to the job in
its environment, where the job checks it before starting.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Iterator

import yaml

from disentune import plugins, provenance
from disentune.config import load_experiment
from disentune.errors import UserError

RUNTIME_ENV = Path(__file__).resolve().parents[2] / "jobs" / "runtime_env.yaml"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as err:  # noqa: BLE001 - connection errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{address}: cannot reach the Ray job API ({first[:160]})") from None


def runtime_env(working_dir: Path) -> dict:
    """``jobs/runtime_env.yaml`` of ``working_dir`` (this project's if it has none), with the
    working directory, the package as a ``py_modules`` entry (absolute, so it resolves wherever
    the submitter runs) and the submitted code version in ``env_vars``."""
    working_dir = working_dir.resolve()
    package = working_dir / "platform" / "disentune"
    if not (package / "__init__.py").is_file():
        raise UserError(f"{working_dir}: not a disentune checkout (no platform/disentune/__init__.py); "
                        "--working-dir must be the repository root, whose package the job runs")
    source = working_dir / "jobs" / "runtime_env.yaml"
    env = yaml.safe_load((source if source.exists() else RUNTIME_ENV).read_text()) or {}
    version = provenance.submitted(working_dir)
    skipped = {working_dir / name for name in (".venv", "reports", "test-artifacts", "platform")}
    plugin_packages, entries = plugins.plugins_in(working_dir, skip=lambda p: any(s in (p, *p.parents) for s in skipped))
    env_vars = {**(env.get("env_vars") or {}), provenance.ENV: version.to_json()}
    if entries:  # plugin source trees in the working directory travel like disentune itself
        env_vars[plugins.ENV] = plugins.encode(entries)
    return {
        **env, "working_dir": str(working_dir), "py_modules": [str(package), *map(str, plugin_packages)],
        "env_vars": env_vars,
    }


def entrypoint(space: Path, working_dir: Path, out: str, samples: int | None, seed: int | None) -> str:
    try:
        relative = space.resolve().relative_to(working_dir.resolve())
    except ValueError:
        raise UserError(f"{space}: the search space must lie inside the uploaded working directory "
                        f"{working_dir}") from None
    args = ["python", "-m", "disentune", "sweep", relative.as_posix(), "--address", "auto", "--out", out]
    if samples is not None:
        args += ["--samples", str(samples)]
    if seed is not None:
        args += ["--seed", str(seed)]
    return shlex.join(args)


def submit(space: Path, *, address: str, out: str, working_dir: Path = Path("."),
           samples: int | None = None, seed: int | None = None) -> str:
    """Validate ``space`` and submit its sweep; returns the job id."""
    load_experiment(space)
    command = entrypoint(space, working_dir, out, samples, seed)
    return client(address).submit_job(entrypoint=command, runtime_env=runtime_env(working_dir))


def follow(address: str, job_id: str, poll_seconds: float = 2.0) -> Iterator[str]:
    """Yield the job's log as it grows, then a last line with its final status."""
    c = client(address)
    shown = 0
    while True:
        status = str(c.get_job_status(job_id)).rsplit(".", 1)[-1]
        logs = c.get_job_logs(job_id)
        if len(logs) > shown:
            yield logs[shown:]
            shown = len(logs)
        if status in TERMINAL:
            yield f"\njob {job_id}: {status}\n"
            return
        time.sleep(poll_seconds)


def status(address: str, job_id: str) -> str:
    return str(client(address).get_job_status(job_id)).rsplit(".", 1)[-1]


def logs(address: str, job_id: str) -> str:
    return client(address).get_job_logs(job_id)


def stop(address: str, job_id: str) -> bool:
    return client(address).stop_job(job_id)
