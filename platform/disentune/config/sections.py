"""The experiment's sections as frozen, keyword-only dataclasses whose fields carry their checks
(:mod:`disentune.config.checks`): the classes are the schema, and the YAML mirrors them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from disentune.config.checks import (  # noqa: F401 (MLFLOW_SCHEMES re-exported)
    MLFLOW_SCHEMES,
    _benchmarks,
    _checked,
    _detectors,
    _fail,
    _float,
    _int,
    _metric_params,
    _metrics,
    _mlflow_uri,
    _one_of,
    _regions,
    _registered,
    _resources,
    _section,
    _spaces,
    _text,
    _uri,
    _weights_uri,
)
from disentune.data.ground_truth import Region
from disentune.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which images a trial trains on."""

    dataset: str = _checked("dsprites", _registered("dataset"))
    # the published file, folder or image collection (local or s3://) for datasets read from files
    path: str | None = _checked(None, lambda v, w: None if v is None else _uri(v, w))
    resolution: int = _checked(64, _one_of(16, 32, 64, 128))
    train_size: int = _checked(0, _int(0))  # images drawn from the grid; 0 = all allowed
    exclude: tuple[Region, ...] = _checked((), _regions)  # factor regions left out of training


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How each trial trains: epochs and the Ray Train workers that run them.

    ``launcher``: ``ray_train`` runs every trial as a Ray Train ``TorchTrainer`` worker group;
    ``in_trial`` runs the same loop inside the Tune trial's own process (one worker, no worker
    group to start: saves Ray Train's start-up, 13 s or more a trial on 2 cores); ``auto`` (the
    default) picks ``in_trial`` for one worker and ``ray_train`` for more.
    """

    epochs: int = _checked(10, _int(1, 100_000))
    launcher: str = _checked("auto", _one_of("auto", "ray_train", "in_trial"))
    workers: int = _checked(1, _int(1, 1024))
    cpus_per_worker: float = _checked(1.0, _float(0.0, 1024.0, open_low=True))
    use_gpu: Any = _checked("auto", _one_of("auto", True, False))  # auto: when the cluster has GPUs
    gpus_per_worker: float = _checked(1.0, _float(0.0, 8.0, open_low=True))
    amp: bool = _checked(False, _one_of(True, False))  # bf16 autocast (where the device supports it)
    compile: bool = _checked(False, _one_of(True, False))  # torch.compile the model for training
    # restarts of a trial (its worker group, or its in-trial process) from its last checkpoint
    max_failures: int = _checked(2, _int(0, 100))
    # a trial whose training and evaluation pass this many seconds stops and counts as failed
    time_limit_s: float | None = _checked(None, _float(0.0, 1e9, open_low=True))  # None: no limit
    # longest wait for a trial's workers to be placed (a cluster waiting on its autoscaler);
    # a Ray Train worker group waits this long per attempt, for at most 1 + max_failures attempts
    placement_timeout_s: float = _checked(600.0, _float(1.0, 1e7))
    # how a Ray Train worker group's workers are placed (its placement group's strategy): PACK on
    # as few nodes as fit, SPREAD one a node where possible (a lost spot node takes fewer workers
    # with it), STRICT_PACK one node, STRICT_SPREAD distinct nodes or wait
    placement_strategy: str = _checked("PACK", _one_of("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"))
    # custom Ray resources each worker also reserves, e.g. {spot: 1}: workers only on nodes started
    # with ``ray start --resources '{"spot": N}'`` (the trial process stays where Tune placed it)
    resources_per_worker: Mapping[str, float] = _checked(None, _resources, factory=dict)
    drill: str = _checked("none", _one_of("none", "worker_exit"))  # crash drill (fault tests)
    drill_epoch: int = _checked(1, _int(1))

    @property
    def in_trial(self) -> bool:
        """Whether trials run their loop in the Tune trial's process (see ``launcher``)."""
        return self.launcher == "in_trial" or (self.launcher == "auto" and self.workers == 1)




# The full suite run by ``disentune evaluate`` (and after the sweep unless ``run_suite: never``).
DEFAULT_SUITE = (
    "mig", "dci", "sap", "modularity", "explicitness", "factor_vae_score", "beta_vae_score", "irs",
    "fid", "kid", "precision_recall", "attribute_control", "unsupervised", "udr",
)


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """The two search objectives computed in every trial, and the full metric suite.

    The objectives (fid, mig) are what Tune and Optuna see. The suite (``suite``, each metric's
    reference defaults overridden by ``metric_params``) runs as parallel Ray tasks with
    ``cpus_per_task`` / ``gpus_per_task`` each, ``after_sweep`` (the default) or ``never`` (run
    ``disentune evaluate`` later).
    FID, KID and precision/recall use Inception-v3 when ``inception_weights`` names a weights
    file (nothing is downloaded), the dataset-factor network otherwise.
    """

    fid_samples: int = _checked(5000, _int(10, 1_000_000))
    mig_samples: int = _checked(10_000, _int(100, 1_000_000))
    mig_bins: int = _checked(20, _int(2, 1000))
    eval_every: int = _checked(0, _int(0))  # epochs between objective evaluations; 0 = at the end
    suite: tuple[str, ...] = _checked(DEFAULT_SUITE, _metrics)
    run_suite: str = _checked("after_sweep", _one_of("after_sweep", "never"))
    metric_params: Mapping[str, Mapping[str, Any]] = _checked(None, _metric_params, factory=dict)
    inception_weights: str | None = _checked(None, _weights_uri)
    # which Inception definition the weights follow: pytorch-fid's FID blocks or torchvision's
    # (auto: read from the file's classifier: 1008 classes is pytorch-fid's FID network)
    inception_kind: str = _checked("auto", _one_of("auto", "pytorch-fid", "torchvision"))
    cpus_per_task: float = _checked(1.0, _float(0.0, 1024.0, open_low=True))
    use_gpu: Any = _checked("auto", _one_of("auto", True, False))  # auto: when the cluster has GPUs
    gpus_per_task: float = _checked(0.25, _float(0.0, 8.0, open_low=True))


# the built-in detectors, by name (the registry holds them, with any plugin's)
DEFAULT_DETECTORS = ("mahalanobis", "knn", "subset_scan", "reconstruction", "neg_elbo", "discriminator")




@dataclass(frozen=True, kw_only=True)
class AnomalyConfig:
    """Anomaly detection with each trained model's representations (``disentune anomaly``).

    One Ray task per (trial, detector, benchmark). Feature detectors (mahalanobis, knn on
    ``latent_spaces``; subset_scan on ``scan_spaces``) are fitted on ``num_fit`` normal images;
    model scores (reconstruction, neg_elbo for VAEs, discriminator for GANs) need no fitting.
    ``benchmarks`` empty means every built-in one that applies (see ``anomaly.benchmarks``).
    """

    run: str = _checked("never", _one_of("after_sweep", "never"))
    detectors: tuple[str, ...] = _checked(DEFAULT_DETECTORS, _detectors)
    benchmarks: tuple[str, ...] = _checked((), _benchmarks)
    latent_spaces: tuple[str, ...] = _checked(("latent",), _spaces)
    scan_spaces: tuple[str, ...] = _checked(("pixel", "activation"), _spaces)
    num_fit: int = _checked(2000, _int(10, 1_000_000))
    num_test: int = _checked(1000, _int(2, 1_000_000))
    knn_k: int = _checked(5, _int(1, 10_000))
    scan_statistic: str = _checked("berk_jones", _one_of("berk_jones", "higher_criticism", "kolmogorov_smirnov"))
    alpha_max: float = _checked(0.5, _float(0.0, 0.999, open_low=True))
    tails: int = _checked(1, _one_of(1, 2))
    contamination: float | None = _checked(None, lambda v, w: None if v is None else _float(0.0, 0.5, open_low=True)(v, w))
    cpus_per_task: float = _checked(1.0, _float(0.0, 1024.0, open_low=True))
    use_gpu: Any = _checked("auto", _one_of("auto", True, False))
    gpus_per_task: float = _checked(0.25, _float(0.0, 8.0, open_low=True))


@dataclass(frozen=True)
class Objective:
    """One search objective: a value a registered metric gives per model (``fid``, ``mig``,
    ``dci_disentanglement``, ``sap``, ...), ``udr`` (across a trial's replicates) or an anomaly
    AUROC ``auroc:<detector>:<benchmark>``, with its direction, ``min`` or ``max``."""

    name: str
    direction: str


def _objectives(value: Any, where: str) -> tuple[Objective, ...]:
    """``[{fid: min}, {mig: max}]``: 2 or 3 single-key mappings of objective name to direction."""
    from disentune.metrics.objectives import objective_source

    shape = "a list of 2 or 3 single-key mappings of objective to direction, e.g. [{fid: min}, {mig: max}]"
    if not isinstance(value, list) or not all(isinstance(v, dict) and len(v) == 1 for v in value):
        raise _fail(where, value, shape)
    if not 2 <= len(value) <= 3:
        raise ConfigError(f"{where}: {len(value)} objectives; give 2 or 3 (fronts of more are not drawn or "
                          "searched well)")
    objectives = []
    for i, item in enumerate(value):
        (name, direction), = item.items()
        if direction not in ("min", "max"):
            raise _fail(f"{where}[{i}].{name}", direction, "min or max")
        objective_source(str(name), f"{where}[{i}]")  # an unknown name is one ConfigError line
        objectives.append(Objective(str(name), direction))
    if len({o.name for o in objectives}) != len(objectives):
        raise _fail(where, value, "objectives without repeats")
    return tuple(objectives)


DEFAULT_OBJECTIVES = (Objective("fid", "min"), Objective("mig", "max"))


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """The multi-objective search: by default fid (minimised) against mig (maximised).

    ``replicates``: each trial trains its configuration with this many seeds (the trial's seed,
    then seeds derived from it), in parallel where the cluster has room; the searcher is told the
    median of each objective over the replicates that succeeded.

    ``scheduler: mo_asha`` stops trials early by multi-objective successive halving: rungs at
    ``min_images * reduction_factor**k`` images seen (``min_images`` 0: the full budget over
    ``reduction_factor**2``), about the best ``1 / reduction_factor`` of a rung's trials continue;
    ``brackets`` asynchronous Hyperband brackets. The objectives are measured at each rung.
    """

    sampler: str = _checked("gp", _one_of("tpe", "nsga2", "gp", "random", "grid"))
    objectives: tuple[Objective, ...] = _checked(DEFAULT_OBJECTIVES, _objectives)
    replicates: int = _checked(1, _int(1, 100))
    scheduler: str = _checked("none", _one_of("none", "mo_asha"))
    min_images: int = _checked(0, _int(0))
    reduction_factor: float = _checked(3.0, _float(1.5, 100.0))
    brackets: int = _checked(1, _int(1, 10))
    num_samples: int = _checked(8, _int(1, 100_000))
    # None: as many as the cluster's GPUs (or CPUs, without GPUs) can hold at once
    max_concurrent_trials: int | None = _checked(None, _int(1, 10_000))
    nsga2_population: int = _checked(8, _int(2, 10_000))






@dataclass(frozen=True, kw_only=True)
class WandbConfig:
    """Where W&B runs go: ``project`` (required), ``entity`` (team or user; None: the key's
    default), ``mode`` (``online``, or ``offline``: runs only written locally, to ``wandb/`` in
    the folder the sweep runs in or under ``$WANDB_DIR``, for ``wandb sync``), ``group`` (None:
    the experiment's name)."""

    project: str = _checked(None, _text("a W&B project name", optional=False, pattern=r"[^\s/\\#?%:]{1,128}"))
    entity: str | None = _checked(None, _text("a W&B entity (team or user) name", pattern=r"[^\s/\\#?%:]{1,128}"))
    mode: str = _checked("online", _one_of("online", "offline"))
    group: str | None = _checked(None, _text("a W&B group name of at most 128 characters", pattern=r"\S.{0,127}"))


def _wandb(value: Any, where: str) -> WandbConfig | None:
    if value is None:
        return None
    if isinstance(value, WandbConfig):
        return value
    kwargs = _section(WandbConfig, value, where)
    if kwargs.get("project") is None:
        raise ConfigError(f"{where}.project: missing; give the W&B project the runs go to")
    return WandbConfig(**kwargs)


@dataclass(frozen=True, kw_only=True)
class TrackingConfig:
    """Experiment trackers fed by every trial (see the module docstring): ``mlflow`` (a
    tracking URI, None: off; a folder is MLflow's file store), ``tensorboard`` (event files in
    each trial's folder of Tune's experiment, ``<run>/tune/tune/<trial>/``; with False, Tune's
    own default TensorBoardX logger still writes them there), ``wandb`` (a :class:`WandbConfig`
    mapping, None: off)."""

    mlflow: str | None = _checked(None, _mlflow_uri)
    tensorboard: bool = _checked(False, _one_of(True, False))
    wandb: WandbConfig | None = _checked(None, _wandb)

    @property
    def enabled(self) -> tuple[str, ...]:
        """The trackers asked for, in the order mlflow, tensorboard, wandb."""
        return tuple(k for k, on in (("mlflow", self.mlflow), ("tensorboard", self.tensorboard),
                                     ("wandb", self.wandb)) if on)


def tracking_from_dict(raw: Any, where: str = "tracking") -> TrackingConfig:
    """A :class:`TrackingConfig` from a mapping (YAML, or a run's stored ``experiment.json``)."""
    return TrackingConfig(**_section(TrackingConfig, {} if raw is None else raw, where))
