"""A real tiny sweep tracked by MLflow (a file store), TensorBoard and W&B (offline), read back.

Two trials of two epochs at 32 px: the objectives are evaluated at the last epoch only, so the
first epoch's report carries NaN objectives, which no tracker may receive as a value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from disentune.config import experiment_from_dict
from disentune.pipeline import run_sweep
from tests.unit.search.test_tracking import read_scalars, read_wandb_records

pytestmark = pytest.mark.integration

FAKE_WANDB_KEY = "fakewandbkey0123456789fortestsonly0123456"  # planted: it must be written nowhere
LOSSES = ("loss_total", "loss_recon")


@pytest.fixture(scope="module")
def tracking_env(tmp_path_factory):
    """W&B offline into a folder of the test, no network; set before Ray starts (the W&B logging
    actor inherits the environment Ray was started with). A fake API key is planted."""
    root = tmp_path_factory.mktemp("tracking_env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(root / "wandb"))
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_API_KEY", FAKE_WANDB_KEY)
        mp.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # the tracker must switch it on itself
        (root / "wandb").mkdir()
        yield root / "wandb"


@pytest.fixture(scope="module")
def sweep(tracking_env, ray_local, tmp_path_factory, dsprites32):
    import ray

    root = tmp_path_factory.mktemp("tracked")
    exp = experiment_from_dict({
        "name": "tracked", "seed": 5,
        "data": {"resolution": 32, "train_size": 320},
        "train": {"epochs": 2, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 100, "mig_samples": 500, "run_suite": "never"},
        "search": {"num_samples": 2, "max_concurrent_trials": 2, "sampler": "random"},
        "space": {"lambda_tc": {"uniform": [0.0, 8.0]}, "batch_size": 32, "latent_dim": 4},
        "tracking": {
            "mlflow": str(root / "mlruns"), "tensorboard": True,
            "wandb": {"project": "disentune-tests", "mode": "offline", "group": "tracked-group"},
        },
    })
    result = run_sweep(exp, out=root / "run")
    session_dir = Path(ray._private.worker._global_node.get_session_dir_path())
    import pyarrow.parquet as pq

    trials = pq.read_table(result.run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "ok").all(), trials[["status", "error"]]
    return {"run": Path(result.run_dir), "mlruns": root / "mlruns", "wandb": tracking_env,
            "trials": trials.sort_values("trial_id").reset_index(drop=True), "session": session_dir}


def _runs(sweep):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=sweep["mlruns"].resolve().as_uri())
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    return client, {r.data.tags["trial_name"].split("_")[-1]: r for r in runs}


def test_mlflow_has_one_run_per_trial_with_params_histories_and_final_objectives(sweep):
    client, runs = _runs(sweep)
    trials = sweep["trials"]
    assert len(runs) == 2
    for t in trials.itertuples():
        run = runs[t.trial_id]  # the run's name is Tune's trial name, _trial_<trial id>
        assert run.info.status == "FINISHED"
        params = run.data.params
        assert math.isclose(float(params["lambda_tc"]), t.lambda_tc, rel_tol=1e-9)  # searched
        assert params["latent_dim"] == "4" and params["batch_size"] == "32"  # fixed
        assert params["variant"] == "beta_tcvae" and params["seed"] == "5"
        # per-epoch losses at steps 1 and 2; the objectives only where evaluated (epoch 2)
        for loss in LOSSES:
            history = client.get_metric_history(run.info.run_id, loss)
            assert [m.step for m in history] == [1, 2] and all(math.isfinite(m.value) for m in history)
        assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "epoch")] == [(1, 1.0), (2, 2.0)]
        for objective in ("fid", "mig"):
            history = client.get_metric_history(run.info.run_id, objective)
            assert [m.step for m in history] == [2], history
            assert math.isclose(history[0].value, getattr(t, objective), rel_tol=1e-6)
            assert math.isclose(run.data.metrics[objective], getattr(t, objective), rel_tol=1e-6)  # final
        assert run.data.metrics["images_seen"] == 2 * 320
        # nothing of the history string, nor Tune's copy of the config, reached MLflow
        assert "history" not in run.data.metrics and "history" not in params
        assert not any(k.startswith("config") for k in run.data.metrics), sorted(run.data.metrics)


def test_tensorboard_events_hold_per_epoch_scalars_without_nan_or_history(sweep):
    tune_dir = sweep["run"] / "tune" / "tune"  # Tune's experiment folder in the run
    trial_dirs = sorted(p for p in tune_dir.iterdir() if p.is_dir() and list(p.glob("events.out.tfevents.*")))
    assert len(trial_dirs) == 2, list(tune_dir.iterdir())
    fids = []
    for folder in trial_dirs:
        scalars, tags = {}, set()
        for events in folder.glob("events.out.tfevents.*"):
            s, t = read_scalars(events)
            tags |= t
            for k, v in s.items():
                scalars.setdefault(k, []).extend(v)
        for loss in LOSSES:
            assert [step for step, _ in scalars[f"ray/tune/{loss}"]] == [1, 2]
        assert [step for step, _ in scalars["ray/tune/fid"]] == [2]
        assert all(math.isfinite(v) for series in scalars.values() for _, v in series)
        assert not any("history" in k or k.startswith("ray/tune/config") for k in scalars)
        assert "_hparams_/experiment" in tags  # the trial's parameters and final metrics
        fids.append(scalars["ray/tune/fid"][0][1])
    assert sorted(fids) == pytest.approx(sorted(sweep["trials"]["fid"]), rel=1e-5)


def _items(items: list[dict]) -> dict:
    """W&B's ``{key | nestedKey, valueJson}`` items as a flat mapping."""
    return {item.get("key") or "/".join(item["nestedKey"]): json.loads(item["valueJson"]) for item in items}


def test_wandb_offline_runs_hold_config_history_and_summary(sweep):
    runs = sorted(sweep["wandb"].glob("wandb/offline-run-*"))
    assert len(runs) == 2, list(sweep["wandb"].rglob("*"))[:20]
    trials = sweep["trials"].set_index("trial_id")
    for folder in runs:
        (record_file,) = folder.glob("run-*.wandb")
        records = read_wandb_records(record_file)
        (run,) = records["run"]
        assert run["project"] == "disentune-tests" and run["runGroup"] == "tracked-group"
        assert records["exit"] == [{"runtime": records["exit"][0]["runtime"]}]  # finished (exit code 0)
        trial = trials.loc[run["runId"]]  # the W&B run id is the Tune trial id
        config = _items(run["config"]["update"] + [i for r in records["config"] for i in r["update"]])
        assert math.isclose(config["lambda_tc"], trial.lambda_tc, rel_tol=1e-9)  # searched
        assert config["latent_dim"] == 4 and config["variant"] == "beta_tcvae"  # fixed
        history = [_items(r["item"]) for r in records["history"]]
        assert [(h["_step"], h["epoch"]) for h in history] == [(1, 1), (2, 2)]
        assert all("history" not in h and math.isfinite(h["loss_total"]) for h in history)
        assert "fid" not in history[0] and "mig" not in history[0]  # NaN at epoch 1: not sent
        assert math.isclose(history[1]["fid"], trial.fid, rel_tol=1e-6)
        summary: dict = {}
        for update in records["summary"]:
            summary.update(_items(update.get("update", [])))
        assert math.isclose(summary["fid"], trial.fid, rel_tol=1e-6)  # the final values
        assert math.isclose(summary["mig"], trial.mig, rel_tol=1e-6) and summary["epoch"] == 2


def test_no_tracker_file_nor_ray_log_holds_the_wandb_key(sweep):
    key = FAKE_WANDB_KEY.encode()
    places = [sweep["run"], sweep["mlruns"], sweep["wandb"], sweep["session"] / "logs"]
    files = [f for place in places for f in place.rglob("*") if f.is_file()]
    assert len(files) > 20
    assert [str(f) for f in files if key in f.read_bytes()] == []
