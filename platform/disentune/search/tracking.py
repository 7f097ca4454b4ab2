"""Experiment trackers (MLflow, TensorBoard, Weights & Biases) through Ray Tune's own callbacks.

The ``tracking`` section of an experiment::

    tracking:
      mlflow: sqlite:///reports/mlflow.db   # or http(s)://server, databricks, a folder (file store)
      tensorboard: true
      wandb: {project: disentune, entity: my-team, mode: offline, group: quickstart}

Every trial (each replicate is one Tune trial) becomes one MLflow run, one TensorBoard log folder
and one W&B run, fed on the driver by Ray Tune's callbacks (:class:`MLflowLoggerCallback`,
:class:`TBXLoggerCallback`, :class:`WandbLoggerCallback`, subclassed here). A tracker receives the
trial's parameters (its Tune config, ``_trial`` and ``_replicate`` included, plus the fixed
parameters of the space where given) once, and every report's metrics at step
``training_iteration`` (one report per epoch: ``loss_*``, ``epoch``, ``images_seen``, the seconds
and the objectives), less what no tracker should get: the ``history`` JSON string (every epoch
so far, resent with each report), the ``config`` copy and non-finite numbers (the objectives are
NaN at epochs that were not evaluated; MLflow would store a NaN point, and its SQL stores turn
inf into 1.8e308). The last report's values are each tracker's final ones (MLflow's latest
metrics, W&B's summary, TensorBoard's hparams).

Nothing here imports Ray, MLflow or W&B at import time. The section itself, :class:`TrackingConfig`,
is part of the typed config (:mod:`disentune.config`).
W&B credentials come from the environment Ray was started with (``WANDB_API_KEY`` or ``wandb
login``); they are never written into a file, and unlike Ray's own callback the W&B logging actor
is not given a copy of the key in its ``runtime_env`` (Ray logs runtime envs in plain text).
"""

from __future__ import annotations

import importlib.util
import math
import netrc
import os
from numbers import Real
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from disentune.config import TrackingConfig, uri_scheme
from disentune.errors import UserError

Check = Callable[[Any, str], Any]

# result keys no tracker receives: the per-epoch history JSON and Tune's copy of the config
NOT_SENT = frozenset({"history", "config"})


EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb"),
          "tensorboard": ("tensorboardX", "tensorboardX")}  # key: (module, what to pip install)


# --------------------------------------------------------------------------------------------
# before Ray starts
def _wandb_key_known() -> bool:
    """Whether an online W&B run will find an API key: ``WANDB_API_KEY`` or ``wandb login``'s
    entry in ``~/.netrc`` (or ``$NETRC``) for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_trackers(cfg: TrackingConfig) -> None:
    """Refuse, in one line and before Ray starts, trackers whose package is missing, and an
    online W&B run without an API key."""
    for key in cfg.enabled:
        module, extra = EXTRAS[key]
        if importlib.util.find_spec(module) is None:
            install = f"pip install 'disentune[{extra}]'" if key != "tensorboard" else "pip install tensorboardX"
            raise UserError(f"tracking.{key}: the {module} package is not installed; {install}")
    if cfg.wandb is not None and cfg.wandb.mode == "online" and not _wandb_key_known():
        raise UserError("tracking.wandb.mode: online needs a W&B API key: set WANDB_API_KEY or run "
                        "`wandb login` (or use mode: offline and `wandb sync` later)")


# --------------------------------------------------------------------------------------------
# what trackers receive
def tracked_metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's report as trackers get it: without :data:`NOT_SENT` keys and non-finite numbers
    (objectives at epochs not evaluated are NaN: no point is sent for them)."""
    return {k: v for k, v in result.items()
            if k not in NOT_SENT and not (isinstance(v, Real) and not math.isfinite(v))}


def _absolute(uri: str) -> str:
    """A local folder as an absolute ``file://`` URI (the callbacks run in the driver's cwd)."""
    return uri if uri_scheme(uri) or uri == "databricks" else Path(uri).expanduser().resolve().as_uri()


def tracker_callbacks(cfg: TrackingConfig, experiment_name: str, *,
                      fixed_params: Mapping[str, Any] | None = None) -> list:
    """Ray Tune callbacks for the trackers ``cfg`` asks for (none: an empty list).

    ``experiment_name`` names the MLflow experiment (reused if it exists) and is the default W&B
    group; ``fixed_params`` (the space's fixed parameters, which are not in a trial's Tune
    config) are logged with each trial's parameters in MLflow and W&B.
    """
    check_trackers(cfg)
    fixed = dict(fixed_params or {})
    callbacks: list = []
    if cfg.mlflow:
        callbacks.append(_mlflow_callback()(uri=_absolute(cfg.mlflow), experiment_name=experiment_name,
                                            fixed_params=fixed))
    if cfg.tensorboard:
        callbacks.append(_tensorboard_callback()())
    if cfg.wandb is not None:
        w = cfg.wandb
        # W&B's own default, ./wandb/ where the sweep runs (or under $WANDB_DIR), made absolute:
        # Ray's logging actor runs in the trial's folder, which Tune may copy before W&B is done
        folder = Path(os.environ.get("WANDB_DIR") or ".").expanduser().resolve()
        callbacks.append(_wandb_callback()(
            project=w.project, entity=w.entity, group=w.group or experiment_name, mode=w.mode,
            folder=str(folder), fixed_params=fixed,
        ))
    return callbacks


# The subclasses are built on first use so that importing this module never imports Ray; they
# are module attributes once built, so Tune can pickle them with the experiment (--resume).
def _mlflow_callback() -> type:
    global MLflowTracker
    if "MLflowTracker" in globals():
        return MLflowTracker
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class MLflowTracker(_TrialMetricsOnly, MLflowLoggerCallback):
        """Ray's MLflow callback: one run per trial, its Tune config (and the fixed parameters)
        as params, each report's finite metrics at step ``training_iteration``; no artifacts
        (checkpoints stay in the run folder)."""

        def __init__(self, *, uri: str, experiment_name: str, fixed_params: Mapping[str, Any]) -> None:
            super().__init__(tracking_uri=uri, experiment_name=experiment_name, save_artifact=False,
                             tags={"disentune.experiment": experiment_name})
            self.fixed_params = dict(fixed_params)

        def setup(self, *args: Any, **kwargs: Any) -> None:
            if uri_scheme(self.tracking_uri) == "file":
                # MLflow 3 keeps its folder store behind this switch; the user asked for a folder
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            super().setup(*args, **kwargs)

        def log_trial_start(self, trial: Any) -> None:
            super().log_trial_start(trial)
            extra = {k: v for k, v in self.fixed_params.items() if k not in trial.config}
            if extra:
                self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=extra)

    MLflowTracker.__module__, MLflowTracker.__qualname__ = __name__, "MLflowTracker"
    return MLflowTracker


def _tensorboard_callback() -> type:
    global TensorBoardTracker
    if "TensorBoardTracker" in globals():
        return TensorBoardTracker
    from ray.tune.logger import TBXLoggerCallback

    class TensorBoardTracker(_TrialMetricsOnly, TBXLoggerCallback):
        """Ray's TensorBoardX callback (it replaces the one Tune adds by itself): scalars
        ``ray/tune/<metric>`` per report, hparams (searched parameters, final metrics) at the
        trial's end, in the trial's folder."""

    TensorBoardTracker.__module__, TensorBoardTracker.__qualname__ = __name__, "TensorBoardTracker"
    return TensorBoardTracker


def _wandb_callback() -> type:
    global WandbTracker
    if "WandbTracker" in globals():
        return WandbTracker
    import ray
    from ray.air.integrations.wandb import WandbLoggerCallback
    from ray.air.util.node import _force_on_current_node

    class WandbTracker(_TrialMetricsOnly, WandbLoggerCallback):
        """Ray's W&B callback: one run per trial (id: the Tune trial id) in ``group``, its Tune
        config (and the fixed parameters) as the run's config, each report's finite metrics at
        step ``training_iteration``, its local files in ``folder/wandb/`` (``offline-run-*``:
        ``wandb sync`` uploads them). No API key is passed or copied: offline needs none,
        online uses the logging actor's environment (that of the Ray node, like every Ray
        process)."""

        def __init__(self, *, project: str, entity: str | None, group: str, mode: str, folder: str,
                     fixed_params: Mapping[str, Any]) -> None:
            extra = {"entity": entity} if entity else {}
            super().__init__(project=project, group=group, mode=mode, dir=folder, **extra)
            self.fixed_params = dict(fixed_params)

        def setup(self, *args: Any, **kwargs: Any) -> None:
            if self.kwargs.get("mode") != "offline":
                super().setup(*args, **kwargs)  # online: Ray checks that a key can be found
            else:  # Ray's check asks for a key unless WANDB_MODE says offline; none is needed
                self.api_key_file = None

        def _start_logging_actor(self, trial: Any, exclude_results: list, **init_kwargs: Any) -> None:
            if self._remote_logger_class is None:  # Ray's copies WANDB_API_KEY into a runtime_env
                self._remote_logger_class = ray.remote(
                    num_cpus=0, **_force_on_current_node(), max_restarts=-1, max_task_retries=-1,
                )(self._logger_actor_cls)
            config = {**self.fixed_params, **init_kwargs.get("config", {})}
            super()._start_logging_actor(trial, exclude_results, **{**init_kwargs, "config": config})

    WandbTracker.__module__, WandbTracker.__qualname__ = __name__, "WandbTracker"
    return WandbTracker


def __getattr__(name: str) -> type:
    """``MLflowTracker``, ``TensorBoardTracker``, ``WandbTracker``, built on first access (how
    pickle finds them when Tune restores an experiment in a new process)."""
    factories = {"MLflowTracker": _mlflow_callback, "TensorBoardTracker": _tensorboard_callback,
                 "WandbTracker": _wandb_callback}
    if name in factories:
        return factories[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _TrialMetricsOnly:
    """Mixin for Ray's logger callbacks: each report reaches the tracker as :func:`tracked_metrics`."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        super().log_trial_result(iteration, trial, tracked_metrics(result))  # type: ignore[misc]
