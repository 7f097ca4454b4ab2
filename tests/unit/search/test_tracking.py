"""The ``tracking`` section, the refusals before Ray starts, and what each tracker receives
(Ray's MLflow and TensorBoard callbacks fed directly, without Ray, and read back)."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disentune.errors import ConfigError, UserError
from disentune.config import TrackingConfig, WandbConfig, tracking_from_dict
from disentune.search.tracking import check_trackers, tracked_metrics, tracker_callbacks

# --------------------------------------------------------------------------------------------
# readers shared with tests/integration/test_tracking.py
def read_scalars(path: Path) -> tuple[dict[str, list[tuple[int, float]]], set[str]]:
    """A TensorBoard event file's scalars ``{tag: [(step, value), ...]}`` and every summary tag
    (TFRecord framing: length, its CRC, the Event protobuf, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[tuple[int, float]]] = {}
    tags: set[str] = set()
    data, at = path.read_bytes(), 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = Event.FromString(data[at + 12:at + 12 + length])
        at += 12 + length + 4
        for value in event.summary.value:
            tags.add(value.tag)
            if value.WhichOneof("value") == "simple_value":
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars, tags


def read_wandb_records(path: Path) -> dict[str, list[dict]]:
    """A W&B run's ``run-*.wandb`` records by type (``run``, ``config``, ``history``, ...) as
    dicts: the LevelDB log format (7-byte file header, 32 KiB blocks of checksum, length, type
    chunks) around ``wandb_internal_pb2.Record`` messages."""
    from google.protobuf.json_format import MessageToDict
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, at, pending, out = 32768, 7, b"", {}
    while at + 7 <= len(data):
        if block - at % block < 7:  # a block's tail too short for a chunk header is padding
            at += block - at % block
            continue
        _, length, kind = struct.unpack("<IHB", data[at:at + 7])
        if kind == 0:  # zero padding to the end of a block
            at += block - at % block
            continue
        pending += data[at + 7:at + 7 + length]
        at += 7 + length
        if kind in (1, 4):  # FULL, LAST
            record = Record.FromString(pending)
            pending = b""
            out.setdefault(record.WhichOneof("record_type"), []).append(
                MessageToDict(getattr(record, record.WhichOneof("record_type"))))
    return out


# --------------------------------------------------------------------------------------------
# the section
def test_defaults_track_nothing():
    cfg = tracking_from_dict(None)
    assert cfg == TrackingConfig() and cfg.enabled == ()
    assert tracker_callbacks(cfg, "x") == []


def test_a_full_section():
    cfg = tracking_from_dict({"mlflow": "sqlite:///runs/mlflow.db", "tensorboard": True,
                              "wandb": {"project": "p", "entity": "team", "mode": "offline", "group": "g"}})
    assert cfg.mlflow == "sqlite:///runs/mlflow.db" and cfg.tensorboard is True
    assert cfg.wandb == WandbConfig(project="p", entity="team", mode="offline", group="g")
    assert cfg.enabled == ("mlflow", "tensorboard", "wandb")
    assert tracking_from_dict({"wandb": {"project": "p"}}).wandb.mode == "online"
    # what experiment.json stores (dataclasses.asdict) reads back as the same section
    import dataclasses

    assert tracking_from_dict(dataclasses.asdict(cfg)) == cfg
    assert tracking_from_dict(dataclasses.asdict(TrackingConfig())) == TrackingConfig()


@pytest.mark.parametrize("uri", ["mlruns", "./a/b", "/abs/mlruns", "file:///tmp/mlruns", "sqlite:///m.db",
                                 "postgresql+psycopg2://u@h/db", "http://127.0.0.1:5000", "https://mlflow.example",
                                 "databricks", "databricks://profile"])
def test_mlflow_uris_allowed(uri):
    assert tracking_from_dict({"mlflow": uri}).mlflow == uri


@pytest.mark.parametrize("uri", ["postgresql://me:s3cretpw@db.example/mlflow", "https://me:s3cretpw@mlflow.example"])
def test_a_password_in_the_mlflow_uri_is_refused_without_echoing_it(uri):
    with pytest.raises(ConfigError, match=r"^tracking\.mlflow: the URI holds a password") as err:
        tracking_from_dict({"mlflow": uri})
    assert "s3cretpw" not in str(err.value) and "\n" not in str(err.value)
    assert tracking_from_dict({"mlflow": uri.replace(":s3cretpw", "")}).mlflow  # a user name alone is fine


BAD = {
    "unknown key": ({"mlfow": "x"}, r"^tracking\.mlfow: unknown key; allowed keys: mlflow, tensorboard, wandb$"),
    "not a mapping": (["mlflow"], r"^tracking: \['mlflow'\] is not allowed; expected a mapping"),
    "mlflow not a string": ({"mlflow": 5}, r"^tracking\.mlflow: 5 is not allowed; expected an MLflow tracking URI"),
    "mlflow empty": ({"mlflow": " "}, r"^tracking\.mlflow: ' ' is not allowed"),
    "mlflow on s3": ({"mlflow": "s3://bucket/mlruns"}, r"^tracking\.mlflow: 's3://bucket/mlruns' is not allowed; expected an MLflow tracking URI: a local folder"),
    "mlflow bad host": ({"mlflow": "http://[::1"}, r"^tracking\.mlflow: 'http://\[::1' is not allowed"),
    "tensorboard yes": ({"tensorboard": "yes"}, r"^tracking\.tensorboard: 'yes' is not allowed; expected one of True, False$"),
    "tensorboard 1": ({"tensorboard": 1}, r"^tracking\.tensorboard: 1 is not allowed"),
    "wandb a string": ({"wandb": "proj"}, r"^tracking\.wandb: 'proj' is not allowed; expected a mapping"),
    "wandb unknown key": ({"wandb": {"project": "p", "api_key": "k"}}, r"^tracking\.wandb\.api_key: unknown key; allowed keys: project, entity, mode, group$"),
    "wandb without project": ({"wandb": {"mode": "offline"}}, r"^tracking\.wandb\.project: missing"),
    "wandb project null": ({"wandb": {"project": None}}, r"^tracking\.wandb\.project: None is not allowed; expected a W&B project name"),
    "wandb project with slash": ({"wandb": {"project": "a/b"}}, r"^tracking\.wandb\.project: 'a/b' is not allowed"),
    "wandb bad mode": ({"wandb": {"project": "p", "mode": "disabled"}}, r"^tracking\.wandb\.mode: 'disabled' is not allowed; expected one of online, offline$"),
    "wandb bad entity": ({"wandb": {"project": "p", "entity": 3}}, r"^tracking\.wandb\.entity: 3 is not allowed"),
    "wandb long group": ({"wandb": {"project": "p", "group": "g" * 129}}, r"^tracking\.wandb\.group: 'g+' is not allowed"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_sections_name_the_key(case):
    raw, pattern = BAD[case]
    with pytest.raises(ConfigError, match=pattern) as err:
        tracking_from_dict(raw)
    assert "\n" not in str(err.value)


keys = st.sampled_from(["mlflow", "tensorboard", "wandb", "project", "entity", "mode", "group", "bogus"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.sampled_from(["", "p", "offline", "online", "s3://b", "http://[", "mlruns", "a/b", " x"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.one_of(values, st.dictionaries(keys, values, max_size=4)))
def test_malformed_sections_only_ever_raise_one_line_config_errors(raw):
    try:
        tracking_from_dict(raw)
    except ConfigError as err:
        assert str(err) and "\n" not in str(err)


def test_importing_the_section_imports_no_tracker_and_no_ray():
    """The section is part of the config: reading it imports no tracker and no Ray."""
    code = ("import sys, disentune.config as t; t.tracking_from_dict({'mlflow': 'm', 'tensorboard': True, "
            "'wandb': {'project': 'p'}}); print(sorted(m for m in ('ray', 'mlflow', 'wandb', 'tensorboardX') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# refusals before Ray starts
@pytest.mark.parametrize("section, module, message", [
    ({"mlflow": "mlruns"}, "mlflow", "tracking.mlflow: the mlflow package is not installed; pip install 'disentune[mlflow]'"),
    ({"wandb": {"project": "p", "mode": "offline"}}, "wandb",
     "tracking.wandb: the wandb package is not installed; pip install 'disentune[wandb]'"),
    ({"tensorboard": True}, "tensorboardX", "tracking.tensorboard: the tensorboardX package is not installed; pip install tensorboardX"),
])
def test_a_tracker_whose_package_is_missing_is_refused_in_one_line(monkeypatch, section, module, message):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import and find_spec fail
    cfg = tracking_from_dict(section)
    for refuse in (lambda: check_trackers(cfg), lambda: tracker_callbacks(cfg, "x")):
        with pytest.raises(UserError) as err:
            refuse()
        assert str(err.value) == message
    check_trackers(tracking_from_dict({k: v for k, v in {"mlflow": "m", "tensorboard": True,
                                                         "wandb": {"project": "p", "mode": "offline"}}.items()
                                       if k not in section}))  # the others are installed


def test_online_wandb_needs_a_key_before_ray_starts(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login x password y\n")
    monkeypatch.setenv("NETRC", str(netrc))
    online = tracking_from_dict({"wandb": {"project": "p"}})
    with pytest.raises(UserError, match=r"^tracking\.wandb\.mode: online needs a W&B API key: set WANDB_API_KEY"):
        check_trackers(online)
    check_trackers(tracking_from_dict({"wandb": {"project": "p", "mode": "offline"}}))  # offline needs none
    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")  # `wandb login`
    check_trackers(online)
    netrc.write_text("")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    check_trackers(online)


# --------------------------------------------------------------------------------------------
# the callbacks
def test_callbacks_are_ray_tunes_own_configured_from_the_section(tmp_path, monkeypatch):
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.air.integrations.wandb import WandbLoggerCallback
    from ray.tune.logger import TBXLoggerCallback

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cfg = tracking_from_dict({"mlflow": "mlruns", "tensorboard": True,
                              "wandb": {"project": "p", "entity": "team", "mode": "offline"}})
    mlflow, tbx, wandb = tracker_callbacks(cfg, "exp", fixed_params={"latent_dim": 4})
    assert isinstance(mlflow, MLflowLoggerCallback) and isinstance(tbx, TBXLoggerCallback)
    assert isinstance(wandb, WandbLoggerCallback)
    assert mlflow.tracking_uri == (tmp_path / "mlruns").as_uri()  # a folder, made absolute
    assert mlflow.experiment_name == "exp" and mlflow.should_save_artifact is False
    assert wandb.project == "p" and wandb.group == "exp"  # the group defaults to the experiment
    assert wandb.kwargs == {"entity": "team", "mode": "offline", "dir": str(tmp_path)}  # ./wandb/, absolute
    assert wandb.api_key is None and wandb.api_key_path is None  # never a key in a file or argument
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    (other,) = tracker_callbacks(tracking_from_dict({"wandb": {"project": "p", "mode": "offline", "group": "g"}}), "exp")
    assert other.group == "g" and other.kwargs["dir"] == str(tmp_path / "elsewhere")
    (only,) = tracker_callbacks(tracking_from_dict({"mlflow": "http://127.0.0.1:5000"}), "exp")
    assert only.tracking_uri == "http://127.0.0.1:5000"


def test_offline_wandb_sets_up_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path))
    (callback,) = tracker_callbacks(tracking_from_dict({"wandb": {"project": "p", "mode": "offline"}}), "exp")
    callback.setup()  # Ray's own setup raises "No WandB API key found" unless WANDB_MODE=offline
    assert "WANDB_API_KEY" not in os.environ


def test_the_callbacks_survive_a_restore_in_a_fresh_process(tmp_path):
    """``--resume`` unpickles the callbacks with the Tune experiment, in a new process."""
    import ray.cloudpickle

    cfg = tracking_from_dict({"mlflow": "sqlite:///m.db", "tensorboard": True, "wandb": {"project": "p", "mode": "offline"}})
    blob = tmp_path / "callbacks.pkl"
    blob.write_bytes(ray.cloudpickle.dumps(tracker_callbacks(cfg, "exp")))
    code = f"import pickle; print([type(c).__name__ for c in pickle.loads(open({str(blob)!r}, 'rb').read())])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['MLflowTracker', 'TensorBoardTracker', 'WandbTracker']"


def test_trackers_get_neither_the_history_string_nor_nan_objectives():
    report = {"loss_total": 1.5, "epoch": 1, "images_seen": 320, "fid": math.nan, "mig": math.nan,
              "history": '[{"epoch": 1}]', "config": {"lambda_tc": 1.0}, "training_iteration": 1,
              "fid_extractor": "factornet", "inf": math.inf, "trial_id": "abc"}
    assert tracked_metrics(report) == {"loss_total": 1.5, "epoch": 1, "images_seen": 320, "training_iteration": 1,
                                       "fid_extractor": "factornet", "trial_id": "abc"}


class FakeTrial:
    """What Ray's logger callbacks use of a Tune trial."""

    def __init__(self, folder: Path, trial_id: str, config: dict) -> None:
        self.trial_id, self.config, self.evaluated_params = trial_id, config, dict(config)
        self.local_path = str(folder / trial_id)

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)

    def __str__(self) -> str:
        return f"_trial_{self.trial_id}"


def _reports():
    """Two epochs as a trial reports them: objectives evaluated only at the last."""
    first = {"loss_total": 2.0, "loss_recon": 1.5, "epoch": 1, "images_seen": 320, "fid": math.nan,
             "mig": math.nan, "history": "[" + '{"epoch": 1},' * 500 + "{}]", "training_iteration": 1,
             "config": {"lambda_tc": 3.0}, "done": False}
    second = {**first, "loss_total": 1.0, "epoch": 2, "images_seen": 640, "fid": 40.0, "mig": 0.25,
              "training_iteration": 2, "done": True}
    return first, second


def _feed(callback, trial):
    callback.setup()
    callback.log_trial_start(trial)
    for i, report in enumerate(_reports(), 1):
        callback.log_trial_result(i, trial, report)
    callback.log_trial_end(trial)


@pytest.mark.parametrize("store", ["sqlite", "folder"])
def test_mlflow_receives_params_per_epoch_metrics_and_final_objectives(tmp_path, monkeypatch, store):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")  # so that the undo removes what the tracker sets
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if store == "sqlite" else str(tmp_path / "mlruns")
    (callback,) = tracker_callbacks(tracking_from_dict({"mlflow": uri}), "unit",
                                    fixed_params={"latent_dim": 4, "lambda_tc": 99.0})
    trial = FakeTrial(tmp_path, "t0001", {"lambda_tc": 3.0, "_trial": 0, "_replicate": 0})
    _feed(callback, trial)

    client = MlflowClient(tracking_uri=callback.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("unit").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["disentune.experiment"] == "unit"
    assert run.data.params == {"lambda_tc": "3.0", "_trial": "0", "_replicate": "0", "latent_dim": "4"}
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss_total")] == [(1, 2.0), (2, 1.0)]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "fid")] == [(2, 40.0)]
    assert run.data.metrics["fid"] == 40.0 and run.data.metrics["mig"] == 0.25 and run.data.metrics["epoch"] == 2
    assert "history" not in run.data.metrics and not any(k.startswith("config") for k in run.data.metrics)


def test_tensorboard_receives_per_epoch_scalars_and_final_hparams(tmp_path):
    (callback,) = tracker_callbacks(tracking_from_dict({"tensorboard": True}), "unit")
    trial = FakeTrial(tmp_path, "t0001", {"lambda_tc": 3.0})
    _feed(callback, trial)
    (events,) = Path(trial.local_path).glob("events.out.tfevents.*")
    scalars, tags = read_scalars(events)
    assert scalars["ray/tune/loss_total"] == [(1, 2.0), (2, 1.0)]
    assert scalars["ray/tune/fid"] == [(2, 40.0)] and scalars["ray/tune/mig"] == [(2, 0.25)]
    assert not any("history" in tag or "config" in tag for tag in tags)
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= tags



def test_a_sweep_asking_for_a_missing_tracker_is_refused_before_ray_starts(monkeypatch, tmp_path):
    """Through the final API: ``tracking`` in the experiment, ``run_sweep`` refusing in one line."""
    import ray

    from disentune.config import experiment_from_dict
    from disentune.pipeline import run_sweep

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setitem(sys.modules, "wandb", None)
    exp = experiment_from_dict({"space": {"lambda_tc": {"uniform": [0.0, 1.0]}},
                                "tracking": {"tensorboard": True, "wandb": {"project": "p", "mode": "offline"}}})
    assert exp.tracking.wandb == WandbConfig(project="p", mode="offline")
    with pytest.raises(UserError) as err:
        run_sweep(exp, out=tmp_path / "run")
    assert str(err.value) == "tracking.wandb: the wandb package is not installed; pip install 'disentune[wandb]'"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("raw, message", [
    ({"tracking": {"bogus": 1}}, "tracking.bogus: unknown key; allowed keys: mlflow, tensorboard, wandb"),
    ({"tracking": {"wandb": {"project": "p", "dir": "/x"}}},
     "tracking.wandb.dir: unknown key; allowed keys: project, entity, mode, group"),
    ({"tracking": "mlruns"}, "tracking: 'mlruns' is not allowed; expected a mapping of keys to values"),
], ids=["unknown key", "unknown wandb key", "not a mapping"])
def test_the_experiment_refuses_a_bad_section_in_one_line(raw, message):
    from disentune.config import experiment_from_dict

    with pytest.raises(ConfigError) as err:
        experiment_from_dict(raw)
    assert str(err.value) == message
