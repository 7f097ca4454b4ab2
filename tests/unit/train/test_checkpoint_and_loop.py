import json

import numpy as np
import pytest
import torch

from disentune.config import experiment_from_dict
from disentune.errors import UserError
from disentune.metrics.factor_net import ensure_factor_net
from disentune.checkpoints import load_model, load_state
from disentune.train.loop import TrialSpec, run_training
from disentune.train.session import LocalSession


@pytest.fixture(scope="module")
def spec(dsprites32):
    exp = experiment_from_dict({
        "name": "loop", "seed": 3,
        "data": {"resolution": 32, "train_size": 256},
        "train": {"epochs": 2},
        "evaluation": {"fid_samples": 100, "mig_samples": 500},
    })
    extractor = ensure_factor_net(dsprites32, "dsprites", 32, seed=0)
    params = {"variant": "beta_tcvae", "lambda_mi": 0.2, "lambda_tc": 1.0, "lr": 1e-3,
              "latent_dim": 4, "batch_size": 32, "seed": 3}
    return TrialSpec(experiment=exp, params=params, extractor_path=str(extractor))


def test_loop_reports_every_epoch_and_objectives_at_the_end(spec, tmp_path):
    session = LocalSession(tmp_path)
    run_training(spec, session)
    metrics = [m for m, _ in session.reports]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert np.isnan(metrics[0]["fid"]) and np.isfinite(metrics[1]["fid"])
    assert 0 <= metrics[1]["mig"] <= 1
    assert metrics[1]["images_seen"] == 2 * 256
    assert metrics[1]["fid_extractor"].startswith("factornet-dsprites-r32:")
    model, meta = load_model(session.reports[-1][1])
    assert meta["params"]["seed"] == 3 and model.latent_dim == 4


def test_resume_from_a_checkpoint_gives_the_same_model(spec, tmp_path):
    straight = LocalSession(tmp_path / "straight")
    run_training(spec, straight)
    first_epoch = straight.reports[0][1]
    resumed = LocalSession(tmp_path / "resumed", resume=first_epoch)
    run_training(spec, resumed)
    assert [m["epoch"] for m, _ in resumed.reports] == [2]
    a = load_state(straight.reports[-1][1])["model"]
    b = load_state(resumed.reports[-1][1])["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert resumed.reports[-1][0]["fid"] == straight.reports[-1][0]["fid"]
    # the resumed run's last report carries the whole history, the epoch before the restore too
    history = json.loads(resumed.reports[-1][0]["history"])
    untimed = [[{k: v for k, v in h.items() if k != "train_seconds"} for h in json.loads(r.reports[-1][0]["history"])]
               for r in (straight, resumed)]
    assert untimed[0] == untimed[1]
    assert [h["epoch"] for h in history] == [1, 2] and np.isfinite(history[-1]["mig"])
    assert all(h["loss_total"] > 0 for h in history)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        load_state(tmp_path)
    (tmp_path / "state.pt").write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(UserError, match="not a readable disentune checkpoint"):
        load_state(tmp_path)


def test_bf16_autocast_trains_to_finite_objectives(spec, tmp_path):
    import dataclasses

    exp = spec.experiment
    amp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, amp=True, epochs=1))
    session = LocalSession(tmp_path)
    run_training(dataclasses.replace(spec, experiment=amp), session)
    metrics = session.reports[-1][0]
    assert np.isfinite(metrics["loss_total"]) and np.isfinite(metrics["fid"])


def test_a_trial_past_its_time_limit_stops_with_the_reason(spec, tmp_path):
    import dataclasses

    exp = spec.experiment
    limited = dataclasses.replace(exp, train=dataclasses.replace(exp.train, time_limit_s=1e-6))
    session = LocalSession(tmp_path)
    run_training(dataclasses.replace(spec, experiment=limited), session)
    assert len(session.reports) == 1  # stopped in the first epoch, after its first step
    metrics, checkpoint = session.reports[0]
    assert metrics["stopped"] == "time limit: train.time_limit_s = 1e-06 s passed at epoch 1, batch 1"
    assert checkpoint is None and np.isnan(metrics["fid"])


OOM_TRIAL = """
import resource, sys
from disentune.config import experiment_from_dict
from disentune.train.loop import TrialSpec, run_training
from disentune.train.session import LocalSession

batch = int(sys.argv[1])
exp = experiment_from_dict({"name": "oom", "seed": 3, "data": {"resolution": 32, "train_size": batch},
                            "train": {"epochs": 1}, "evaluation": {"fid_samples": 64, "mig_samples": 300}})
params = {"variant": "beta_tcvae", "lambda_mi": 0.0, "lambda_tc": 1.0, "lr": 1e-3, "latent_dim": 4,
          "batch_size": batch, "seed": 3}
spec = TrialSpec(experiment=exp, params=params, extractor_path=sys.argv[2])
mapped = int(open("/proc/self/statm").read().split()[0]) * 4096
resource.setrlimit(resource.RLIMIT_AS, (mapped + 2**30, resource.RLIM_INFINITY))  # 1 GiB more
session = LocalSession()
run_training(spec, session)
print(session.reports[-1][0].get("stopped"))
"""


@pytest.mark.parametrize("batch, stopped", [
    (64, "None"),
    (16384, "out of memory at epoch 1, batch 1: could not allocate 512.0 MiB"),
])
def test_running_out_of_memory_stops_the_trial_with_the_reason(spec, batch, stopped):
    """A real allocation failure: the operating system refuses memory beyond a 1 GiB limit."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", OOM_TRIAL, str(batch), spec.extractor_path],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == stopped
