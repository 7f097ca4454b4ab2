"""Sweeps that survive faults: a worker that dies mid-trial, a driver killed and resumed, a trial
whose loss becomes NaN. Real Ray processes on this machine only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from disentune.config import experiment_from_dict
from disentune.pipeline import run_sweep

pytestmark = pytest.mark.integration


def tiny(name, *, samples=2, epochs=2, launcher="auto", drill="none", seed=3, concurrent=2) -> dict:
    return {
        "name": name, "seed": seed,
        "data": {"resolution": 32, "train_size": 192},
        "train": {"epochs": epochs, "launcher": launcher, "drill": drill, "drill_epoch": 1},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"},
        "search": {"num_samples": samples, "max_concurrent_trials": concurrent},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    }


@pytest.mark.parametrize("launcher", ["in_trial", "ray_train"])
def test_a_worker_that_exits_mid_trial_resumes_from_its_checkpoint(ray_local, tmp_path, launcher, dsprites32):
    result = run_sweep(experiment_from_dict(tiny("drill", samples=1, epochs=3, launcher=launcher,
                                                 drill="worker_exit")), out=tmp_path / "run")
    trials = pq.read_table(result.run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 1 and trials["status"].iloc[0] == "ok", trials[["status", "error"]]
    assert trials["epochs"].iloc[0] == 3 and trials["images_seen"].iloc[0] == 3 * 192
    curves = pq.read_table(result.run_dir / "curves.parquet").to_pandas()
    assert curves["epoch"].max() == 3


def test_a_diverging_trial_is_recorded_as_failed_and_the_others_complete(ray_local, tmp_path, dsprites32):
    space = tiny("nan", samples=4)
    space["search"]["sampler"] = "grid"
    space["space"].update(lambda_tc=1.0, lr={"choice": [1.0e-3, 1.0]}, seed={"choice": [3, 4]})
    result = run_sweep(experiment_from_dict(space), out=tmp_path / "run")  # Adam at lr 1 diverges
    trials = pq.read_table(result.run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 4
    diverged = trials[trials["lr"] == 1.0]
    assert (diverged["status"] == "failed").all()
    assert diverged["error"].str.fullmatch(r"diverged: loss became nan at epoch 1, batch \d+").all()
    assert (trials.loc[trials["lr"] < 1.0, "status"] == "ok").all()
    page = (result.run_dir / "index.html").read_text()
    assert "diverged: loss became nan" in page and "4 (2 failed)" in page


def test_trials_over_their_time_limit_fail_with_the_reason_and_the_sweep_finishes(ray_local, tmp_path, dsprites32):
    space = tiny("limit", samples=2, epochs=3)
    space["train"]["time_limit_s"] = 0.05  # far less than one epoch of 6 batches
    result = run_sweep(experiment_from_dict(space), out=tmp_path / "run")
    trials = pq.read_table(result.run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "failed").all()
    assert trials["error"].str.fullmatch(r"time limit: train.time_limit_s = 0.05 s passed at epoch 1, batch \d").all()
    assert (trials["epochs"] == 1).all()  # stopped in the first epoch, not retried
    page = (result.run_dir / "index.html").read_text()
    assert "time limit: train.time_limit_s" in page and "2 (2 failed)" in page


def start_driver(tmp_path, name: str, samples: int, **popen):
    """``disentune sweep`` of ``samples`` one-at-a-time trials (4 epochs x 1,024 images) in its own
    session; returns the space file, the run folder, the environment and the driver process."""
    import yaml

    space = tmp_path / "space.yaml"
    config = tiny(name, samples=samples, epochs=4, concurrent=1)
    config["data"]["train_size"] = 1024
    space.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out)],
                              env=env, start_new_session=True, **popen)
    return space, out, env, driver


def test_a_killed_driver_resumes_without_rerunning_or_duplicating_trials(tmp_path, dsprites32):
    space, out, env, driver = start_driver(tmp_path, "resume", 5, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:  # wait until one trial has its last (4th) checkpoint
            done = list((out / "tune" / "tune").glob("_trial_*/checkpoint_000003"))
            if done:
                break
            time.sleep(0.2)
        assert done, "no trial finished before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        driver.wait(timeout=60)
    assert not (out / "trials.parquet").exists()
    refused = subprocess.run([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out)],
                             capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = subprocess.run([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out), "--resume"],
                             capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = pq.read_table(out / "trials.parquet").to_pandas()
    assert len(trials) == 5 and trials["trial_id"].is_unique and trials["trial_number"].is_unique
    assert (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert sorted(trials["trial_number"]) == [0, 1, 2, 3, 4]
    assert (trials["images_seen"] == 4 * 1024).all()
    # a trial Optuna handed to the killed driver is closed, and best_trials still match the table
    assert "Optuna's best_trials agree" in resumed.stdout, resumed.stdout[-2000:]
    assert not _running_optuna_trials(out / "optuna.journal")


def _running_optuna_trials(journal) -> list[int]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=optuna.study.get_all_study_names(storage)[0], storage=storage)
    return [t.number for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))]


def test_ctrl_c_writes_no_tables_and_the_resumed_sweep_finishes_every_trial(tmp_path, dsprites32):
    space, out, env, driver = start_driver(tmp_path, "interrupt", 3, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "tune" / "tune").glob("_trial_*/checkpoint_000001")):
        time.sleep(0.2)
    os.kill(driver.pid, signal.SIGINT)  # Ctrl-C: the first trial is mid-way, the others not started
    try:
        stdout, stderr = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("disentune: interrupted: ") and "did not finish" in last and "--resume" in last, last
    assert not (out / "trials.parquet").exists()  # an unfinished trial is never written down as failed
    resumed = subprocess.run([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out), "--resume"],
                             capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = pq.read_table(out / "trials.parquet").to_pandas()
    assert sorted(trials["trial_number"]) == [0, 1, 2]
    assert (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert (trials["images_seen"] == 4 * 1024).all()
