"""A node lost mid-trial, on a real two-node Ray cluster on this machine (tests/integration/
cluster.py: ``ray start --head`` and ``ray start --address``, each with its own temp dir and
ports; a node is lost the way a preempted machine is, SIGKILL of its raylet and of everything it
started). Trials are 2 Ray Train workers of 1 CPU on nodes of 1 CPU, so each trial spans the head
and the worker node.

- The first trial loses its worker node after its first checkpoint; a fresh node joins, Ray Train
  places the worker group again (head + new node) and the trial continues from that checkpoint.
- The second trial loses the new node and no node comes back: its worker group cannot be placed,
  and the trial fails with that reason after 1 + max_failures waits of train.placement_timeout_s.

The worker nodes offer no Ray ``memory`` resource, so Tune's trial processes (which reserve one
byte of it, search/tune.py) and the Ray Train controllers beside them stay on the head, as on a
cluster whose preemptible nodes host only training workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .cluster import Cluster, _cmdline

pytestmark = pytest.mark.integration

EPOCHS, IMAGES, PLACEMENT_S = 3, 1024, 15


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        c.start_head(num_cpus=1)
        yield c
    finally:
        c.shutdown()


def titles(node) -> list[str]:
    """The Ray process titles on ``node`` (``ray::RayTrainWorker``, ``ray::ImplicitFunc``, ...),
    without the method a worker is running (``ray::RayTrainWorker.run_train_fn``)."""
    return [_cmdline(p).split()[0].split(".")[0] for p in node.pids() if _cmdline(p).startswith("ray::")]


def train_runs(out: Path) -> list[Path]:
    """Ray Train's run folders (one per trial), oldest first."""
    return sorted((out / "tune" / "train").glob("train-*"), key=lambda p: p.stat().st_mtime)


def wait_until(what, seconds: float, driver: subprocess.Popen, log: Path):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = what()
        if found:
            return found
        if driver.poll() is not None:
            raise AssertionError(f"the sweep ended early (rc {driver.returncode}): {log.read_text()[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what.__doc__}")


def first_checkpoint(run: Path) -> list[dict] | None:
    """The history in a run's first checkpoint that Ray Train has registered, the one a restart
    resumes from (None while there is none). A checkpoint folder appears in storage before the
    controller registers it; a node lost in between restarts the trial from scratch."""
    import json

    import torch

    try:
        registered = json.loads((run / "checkpoint_manager_snapshot.json").read_text())["checkpoint_results"]
        return torch.load(run / registered[0]["checkpoint_dir_name"] / "state.pt", weights_only=True)["history"]
    except Exception:  # noqa: BLE001 - none registered yet, or still being written: look again
        return None


def test_a_trial_that_loses_a_node_continues_from_its_checkpoint_and_one_with_no_room_fails(cluster, tmp_path,
                                                                                           dsprites32):
    from disentune.checkpoints import load_model_uri, load_state
    from disentune.reports.storage import read_table

    spot = {"num_cpus": 1, "resources": {"spot": 1}, "labels": "pool=spot", "memory": 0}
    n2 = cluster.add_node("n2", **spot)
    assert len(cluster.alive_nodes()) == 2
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": "nodeloss", "seed": 3, "data": {"resolution": 32, "train_size": IMAGES},
        "train": {"epochs": EPOCHS, "launcher": "ray_train", "workers": 2, "max_failures": 1,
                  "placement_timeout_s": PLACEMENT_S, "placement_strategy": "SPREAD"},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"}, "anomaly": {"run": "never"},
        "search": {"num_samples": 2, "max_concurrent_trials": 1, "sampler": "grid"},
        "space": {"lambda_tc": {"choice": [1.0, 3.0]}, "batch_size": 32, "latent_dim": 3},
    }))
    out, log = tmp_path / "run", tmp_path / "driver.log"
    with open(log, "w") as sink:
        driver = subprocess.Popen([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out),
                                   "--address", cluster.address], stdout=sink, stderr=subprocess.STDOUT,
                                  env={**cluster.env, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        # Ray Train's workers write checkpoints straight into the run's storage, at once; Tune's
        # result.json there is synced from the driver later (after the trial, on a short one)
        def trial_a_checkpointed():
            """the first trial's first checkpoint"""
            runs = train_runs(out)
            return runs and first_checkpoint(runs[0])

        before = wait_until(trial_a_checkpointed, 600, driver, log)
        head = cluster.nodes[0]
        on = {"head": titles(head), "n2": titles(n2)}
        assert "ray::RayTrainWorker" in on["head"] and "ray::RayTrainWorker" in on["n2"], on  # one on each
        assert "ray::ImplicitFunc" not in on["n2"], on
        assert n2.kill() and n2.pids() == []
        n3 = cluster.add_node("n3", **spot)

        def trial_b_checkpointed():
            """the second trial's first checkpoint"""
            runs = train_runs(out)
            return len(runs) > 1 and first_checkpoint(runs[1])

        wait_until(trial_b_checkpointed, 600, driver, log)
        assert "ray::RayTrainWorker" in titles(n3), titles(n3)
        n3.kill()  # no node comes back
        lost = time.time()
        driver.wait(timeout=2 * PLACEMENT_S + 240)
        ended = time.time() - lost
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=60)
    printed = log.read_text()
    assert driver.returncode == 0, printed[-4000:]
    assert ended < 2 * PLACEMENT_S + 180, ended  # a bounded wait, not a hang

    trials = read_table(str(out / "trials.parquet")).to_pandas().sort_values("trial_number")
    assert trials["trial_number"].tolist() == [0, 1] and trials["trial_id"].is_unique
    assert len(read_table(str(out / "replicates.parquet"))) == 2
    a, b = trials.iloc[0], trials.iloc[1]
    assert a["status"] == "ok" and a["epochs"] == EPOCHS and a["images_seen"] == EPOCHS * IMAGES, a
    assert b["status"] == "failed", b
    assert "the worker group was not placed" in b["error"], b["error"]
    assert f"train.placement_timeout_s = {PLACEMENT_S} s" in b["error"], b["error"]

    curves = read_table(str(out / "curves.parquet")).to_pandas()
    assert not curves.duplicated(["trial_number", "epoch", "metric"]).any()
    epochs = {n: sorted(set(rows["epoch"])) for n, rows in curves.groupby("trial_number")}
    assert epochs[0] == list(range(1, EPOCHS + 1)), epochs
    # the failed trial's curves: what it trained, without gaps (a failed Ray Train trial's last
    # report may not reach the driver, so they may be absent)
    assert epochs.get(1, [1]) == list(range(1, max(epochs.get(1, [1])) + 1)), epochs
    # trial A went on from the checkpoint it had when the node was lost: its first epoch is that
    # checkpoint's (a fresh start would have measured epoch 1 again, at another time)
    first = curves[(curves["trial_number"] == 0) & (curves["epoch"] == 1) & (curves["metric"] == "train_seconds")]
    assert first["value"].tolist() == [before[0]["train_seconds"]]
    _, meta = load_model_uri(a["checkpoint_uri"])
    assert meta["variant"] == "beta_tcvae" and load_state(a["checkpoint_uri"])["epoch"] == EPOCHS
    if isinstance(b["checkpoint_uri"], str):  # the failed trial's last checkpoint loads too
        load_model_uri(b["checkpoint_uri"])
    shutil.rmtree(out / "tune", ignore_errors=True)
