"""Typed experiment config: the YAML search spaces in ``search_spaces/`` mirror these classes.

Every section is a frozen, keyword-only dataclass whose fields carry their own check, so the
classes *are* the schema. :func:`load_experiment` reads YAML with the safe loader and builds an
:class:`Experiment`, refusing unknown keys, wrong types and out-of-range values with one line that
names the key, the value and what is allowed (:class:`~disentune.errors.ConfigError`). Nothing
here starts Ray or touches data.

The ``space`` section maps each searchable hyperparameter (:data:`SEARCHABLE`) to a fixed value or
one of ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``,
``{choice: [a, b, ...]}``. Parameters left out keep their default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from urllib.parse import urlparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from disentune.data.ground_truth import Region
from disentune.errors import ConfigError

Check = Callable[[Any, str], Any]


def _fail(where: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{where}: {value!r} is not allowed; expected {allowed}")


def _int(low: int, high: int | None = None) -> Check:
    def check(value: Any, where: str) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            raise _fail(where, value, f"an integer in [{low}, {high if high is not None else 'inf'}]")
        return value

    return check


def _float(low: float, high: float, *, open_low: bool = False) -> Check:
    def check(value: Any, where: str) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value > high or value < low or (open_low and value == low):
            bracket = "(" if open_low else "["
            raise _fail(where, value, f"a finite number in {bracket}{low}, {high}]")
        return float(value)

    return check


def _one_of(*choices: Any) -> Check:
    bools = [c for c in choices if isinstance(c, bool)]
    others = [c for c in choices if not isinstance(c, bool)]

    def check(value: Any, where: str) -> Any:
        # a bool is not a number here, nor a number a bool (1 == True in Python)
        if not (value in bools if isinstance(value, bool) else value in others):
            raise _fail(where, value, f"one of {', '.join(map(str, choices))}")
        return value

    return check


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
        raise _fail(where, value, "a name of letters, digits, '_', '.', '-' (at most 64)")
    return value


def _registered(kind: str) -> Check:
    def check(value: Any, where: str) -> str:
        from disentune.registry import DATASETS, MODELS  # registries import torch; only on demand

        table = {"variant": MODELS, "dataset": DATASETS}[kind]
        if not isinstance(value, str) or value not in table:
            raise _fail(where, value, f"one of {', '.join(table.names())}")
        return value

    return check


def _checked(default: Any, check: Check, *, factory: Callable[[], Any] | None = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"check": check})
    return field(default=default, metadata={"check": check})


# --------------------------------------------------------------------------------------------
# sections
@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which images a trial trains on."""

    dataset: str = _checked("dsprites", _registered("dataset"))
    # the published file, folder or image collection (local or s3://) for datasets read from files
    path: str | None = _checked(None, lambda v, w: None if v is None else _uri(v, w))
    resolution: int = _checked(64, _one_of(16, 32, 64, 128))
    train_size: int = _checked(0, _int(0))  # images drawn from the grid; 0 = all allowed
    exclude: tuple[Region, ...] = field(default=(), metadata={"check": None})


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
    drill: str = _checked("none", _one_of("none", "worker_exit"))  # crash drill (fault tests)
    drill_epoch: int = _checked(1, _int(1))

    @property
    def in_trial(self) -> bool:
        """Whether trials run their loop in the Tune trial's process (see ``launcher``)."""
        return self.launcher == "in_trial" or (self.launcher == "auto" and self.workers == 1)


def _metrics(value: Any, where: str) -> tuple[str, ...]:
    from disentune.registry import METRICS

    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(where, value, f"a non-empty list of metric names from {', '.join(METRICS.names())}")
    for i, name in enumerate(value):
        if name not in METRICS:
            raise _fail(f"{where}[{i}]", name, f"one of {', '.join(METRICS.names())}")
    if len(set(value)) != len(value):
        raise _fail(where, value, "a list without repeated names")
    return tuple(value)


def _metric_params(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """``{metric: {param: value}}`` overriding a metric's defaults (sample sizes, bins, ...)."""
    from disentune.registry import METRICS

    if not isinstance(value, dict):
        raise _fail(where, value, "a mapping of metric name to {parameter: value}")
    out = {}
    for name, params in value.items():
        if name not in METRICS:
            raise _fail(f"{where}.{name}", name, f"one of {', '.join(METRICS.names())}")
        allowed = METRICS.get(name).defaults
        if not isinstance(params, dict):
            raise _fail(f"{where}.{name}", params, f"a mapping of {', '.join(allowed) or 'no parameters'}")
        for key, v in params.items():
            if key not in allowed:
                raise ConfigError(f"{where}.{name}.{key}: unknown parameter; allowed: {', '.join(allowed)}")
            default = allowed[key]
            if isinstance(default, int) and not isinstance(default, bool):
                _int(1)(v, f"{where}.{name}.{key}")
            elif isinstance(default, float):
                _float(0.0, 1e9)(v, f"{where}.{name}.{key}")
        out[name] = dict(params)
    return out


def _uri(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, value, "a local path or s3:// URI")
    return value


def _weights_uri(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, value, "a local path or s3:// URI of an Inception-v3 weights file")
    return value


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


def _detectors(value: Any, where: str) -> tuple[str, ...]:
    from disentune.registry import DETECTORS  # names only: the anomaly code stays unimported here

    if not isinstance(value, list) or not value or any(v not in DETECTORS for v in value):
        raise _fail(where, value, f"a non-empty list from {', '.join(DETECTORS.names())}")
    return tuple(dict.fromkeys(value))


def _benchmarks(value: Any, where: str) -> tuple[str, ...]:
    from disentune.registry import benchmark_family

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, value, "a list of benchmark names (empty: every built-in benchmark)")
    for i, name in enumerate(value):
        try:
            benchmark_family(name)
        except ConfigError as err:
            raise ConfigError(f"{where}[{i}]: {err}") from None
    return tuple(value)


def _spaces(value: Any, where: str) -> tuple[str, ...]:
    ok = isinstance(value, list) and value and all(
        isinstance(v, str) and (v in ("latent", "pixel", "activation") or v.startswith("activation:"))
        for v in value)
    if not ok:
        raise _fail(where, value, "a non-empty list of latent, pixel, activation (the default layer) "
                                  "or activation:<layer>")
    return tuple(value)


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


# tracking URI schemes MLflow's own stores understand (no scheme: a local folder, a file store)
MLFLOW_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def _text(what: str, *, optional: bool = True, pattern: str = r"\S+") -> Check:
    def check(value: Any, where: str) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise _fail(where, value, what)
        return value

    return check


def uri_scheme(uri: str) -> str:
    """The URI's scheme without a driver (``postgresql+psycopg2``); '' for a local folder."""
    try:
        scheme = urlparse(uri).scheme
    except ValueError:  # e.g. an unclosed [ in an IPv6 host
        return "?"
    return scheme.split("+")[0] if len(scheme) > 1 else ""  # "C:/data" is a folder


def _mlflow_uri(value: Any, where: str) -> str | None:
    """An MLflow tracking URI: a local folder (file store), ``file:``, a database, a server."""
    allowed = ("an MLflow tracking URI: a local folder, file:///..., sqlite:///..., postgresql://..., "
               "mysql://..., mssql://..., http(s)://host:port or databricks")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise _fail(where, value, allowed)
    if uri_scheme(value) and uri_scheme(value) not in MLFLOW_SCHEMES:
        raise _fail(where, value, allowed)
    if uri_scheme(value) and urlparse(value).password:  # never echoed: it would land in logs
        raise ConfigError(f"{where}: the URI holds a password, which would be written into the run's "
                          "experiment.json; give it through MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN "
                          "(a server) or the database client's own settings (e.g. PGPASSWORD)")
    return value


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


@dataclass(frozen=True)
class ParamSpec:
    """One searchable hyperparameter: ``kind`` is fixed, uniform, loguniform, int or choice."""

    kind: str
    values: tuple

    @property
    def fixed(self) -> bool:
        return self.kind == "fixed"


@dataclass(frozen=True)
class Searchable:
    default: Any
    check: Check
    numeric: str | None  # "float", "int" or None (categorical only)


SEARCHABLE: dict[str, Searchable] = {
    "variant": Searchable("beta_tcvae", _registered("variant"), None),
    "lambda_mi": Searchable(0.0, _float(0.0, 1000.0), "float"),
    "lambda_tc": Searchable(0.0, _float(0.0, 1000.0), "float"),
    "lr": Searchable(1e-3, _float(0.0, 1.0, open_low=True), "float"),
    "latent_dim": Searchable(10, _int(1, 512), "int"),
    "batch_size": Searchable(64, _int(2, 65_536), "int"),
    "seed": Searchable(None, _int(0, 2**31 - 1), "int"),
    "scale_tied_codes": Searchable(False, _one_of(True, False), None),  # info_stylegan only
    # annealed_vae: the KL capacity (nats) reached after anneal_steps optimisation steps
    "c_max": Searchable(25.0, _float(0.0, 10_000.0), "float"),
    "anneal_steps": Searchable(100_000, _int(1, 10**9), "int"),
}


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A whole search: what to train, how, how to evaluate, and where to search."""

    name: str = _checked("experiment", _name)
    seed: int = _checked(0, _int(0, 2**31 - 1))
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    space: Mapping[str, ParamSpec] = field(default_factory=dict)
    # a space given as a list of subspaces (each a grid of choices, e.g. one per variant with its
    # own weights); ``space`` is then their union, and the grid sampler runs every subspace's grid
    subspaces: tuple[Mapping[str, ParamSpec], ...] = ()

    def param(self, name: str) -> ParamSpec:
        """The spec of a searchable parameter, its default if the space leaves it out."""
        if name in self.space:
            return self.space[name]
        default = SEARCHABLE[name].default
        return ParamSpec("fixed", (self.seed if name == "seed" else default,))

    def params(self) -> dict[str, ParamSpec]:
        return {name: self.param(name) for name in SEARCHABLE}

    def searched(self) -> list[str]:
        """Names of the parameters that vary between trials."""
        return [n for n, p in self.params().items() if not p.fixed]

    def grid(self) -> list[dict[str, Any]]:
        """Every point of the grid sampler's grid, the searched parameters of each: the product of
        the choices, or with subspaces the union of each subspace's product (a parameter a
        subspace leaves out takes its default there)."""
        import itertools

        searched = self.searched()
        spaces = self.subspaces or (self.space,)
        points: list[dict[str, Any]] = []
        for sub in spaces:
            specs = [sub.get(n) or ParamSpec("fixed", (self.seed if n == "seed" else SEARCHABLE[n].default,))
                     for n in searched]
            for combo in itertools.product(*(s.values for s in specs)):
                point = dict(zip(searched, combo))
                if point not in points:
                    points.append(point)
        return points


# --------------------------------------------------------------------------------------------
# building from mappings
def _section(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(where, raw, "a mapping of keys to values")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(f"{path}: unknown key; allowed keys: {', '.join(f for f in fields if f != 'subspaces')}")
        check = fields[key].metadata.get("check")
        if check is not None:
            kwargs[key] = check(value, path)
    if cls is DataConfig and "exclude" in raw:
        kwargs["exclude"] = _regions(raw["exclude"], f"{where}.exclude")
    return kwargs


def _regions(raw: Any, where: str) -> tuple[Region, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(where, raw, "a list of regions, each a mapping of factor name to values")
    regions = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not all(isinstance(v, list) for v in item.values()):
            raise _fail(f"{where}[{i}]", item, "a mapping of factor name to a list of values")
        regions.append(Region({str(k): tuple(v) for k, v in item.items()}))
    return tuple(regions)


_SPEC_KINDS = ("uniform", "loguniform", "int", "choice")


def _param(name: str, raw: Any, where: str) -> ParamSpec:
    spec = SEARCHABLE[name]
    if not isinstance(raw, dict):
        return ParamSpec("fixed", (spec.check(raw, where),))
    if len(raw) != 1 or next(iter(raw)) not in _SPEC_KINDS:
        raise _fail(where, raw, f"a value or one of {{{': [...]}, {'.join(_SPEC_KINDS)}: [...]}}")
    kind, values = next(iter(raw.items()))
    where = f"{where}.{kind}"
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise _fail(where, values, "a non-empty list of values")
        return ParamSpec("choice", tuple(spec.check(v, f"{where}[{i}]") for i, v in enumerate(values)))
    if spec.numeric is None or (kind == "int") != (spec.numeric == "int"):
        allowed = {None: "choice", "int": "int or choice", "float": "uniform, loguniform or choice"}
        raise ConfigError(f"{where}: {name} cannot be searched with {kind}; use {allowed[spec.numeric]}")
    if not isinstance(values, list) or len(values) != 2:
        raise _fail(where, values, "a range [low, high]")
    low, high = (spec.check(v, f"{where}[{i}]") for i, v in enumerate(values))
    if low == high:
        raise ConfigError(f"{where}: empty range [{low}, {high}]; give low < high or a fixed value")
    if low > high:
        raise ConfigError(f"{where}: inverted range [{low}, {high}]; expected low < high")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform bounds must be > 0, got low={low}")
    return ParamSpec(kind, (low, high))


def _space(raw: Any, where: str = "space") -> dict[str, ParamSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(where, raw, "a mapping of parameter name to a value or a range (or a list of such "
                                "subspaces for the grid sampler)")
    out = {}
    for name, value in raw.items():
        if name not in SEARCHABLE:
            raise ConfigError(f"{where}.{name}: unknown key; allowed keys: {', '.join(SEARCHABLE)}")
        out[name] = _param(name, value, f"{where}.{name}")
    return out


def _subspaces(raw: list, seed: int) -> tuple[dict[str, ParamSpec], tuple[dict[str, ParamSpec], ...]]:
    """A list of subspaces (each fixed values and choices only) and their union."""
    if not raw:
        raise _fail("space", raw, "a mapping, or a non-empty list of subspaces")
    subspaces = tuple(_space(item, f"space[{i}]") for i, item in enumerate(raw))
    for i, sub in enumerate(subspaces):
        ranges = [n for n, p in sub.items() if p.kind not in ("fixed", "choice")]
        if ranges:
            raise ConfigError(f"space[{i}].{ranges[0]}: a list of subspaces is a grid; give a value or a choice")
    union: dict[str, ParamSpec] = {}
    for name in SEARCHABLE:
        if not any(name in sub for sub in subspaces):
            continue
        default = seed if name == "seed" else SEARCHABLE[name].default
        values = tuple(dict.fromkeys(v for sub in subspaces for v in (sub[name].values if name in sub else (default,))))
        union[name] = ParamSpec("fixed" if len(values) == 1 else "choice", values)
    return union, subspaces


def _check_weights(exp: Experiment) -> None:
    """Each variant's own limits on lambda_mi / lambda_tc (e.g. beta_tcvae: lambda_mi <= 1)."""
    from disentune.registry import MODELS

    spaces = [(f"space[{i}]", dataclasses.replace(exp, space=sub)) for i, sub in enumerate(exp.subspaces)]
    for where, part in spaces or [("space", exp)]:
        for variant in part.param("variant").values:
            for weight, (low, high) in MODELS.get(variant).weight_bounds.items():
                values = part.param(weight).values
                if min(values) < low or max(values) > high:
                    raise ConfigError(
                        f"{where}.{weight}: {list(values)!r} leaves [{low}, {high}], "
                        f"the range variant {variant} allows"
                    )


def experiment_from_dict(raw: Any) -> Experiment:
    """Build and validate an :class:`Experiment` from a parsed YAML mapping."""
    if not isinstance(raw, dict):
        raise _fail("search space", raw, "a mapping with keys name, data, train, search, space, ...")
    sections = {
        "data": DataConfig,
        "train": TrainConfig,
        "evaluation": EvaluationConfig,
        "anomaly": AnomalyConfig,
        "search": SearchConfig,
        "tracking": TrackingConfig,
    }
    top = {k: v for k, v in raw.items() if k not in sections and k != "space"}
    if "subspaces" in top:  # a field set from a list-valued space, never a key of its own
        raise ConfigError("subspaces: unknown key; give space as a list of subspaces instead")
    kwargs = _section(Experiment, top, "")
    for key, cls in sections.items():
        kwargs[key] = cls(**_section(cls, raw.get(key), key))
    if isinstance(raw.get("space"), list):
        kwargs["space"], kwargs["subspaces"] = _subspaces(raw["space"], kwargs.get("seed", 0))
    else:
        kwargs["space"] = _space(raw.get("space"))
    exp = Experiment(**kwargs)
    if exp.subspaces and exp.search.sampler != "grid":
        raise ConfigError(f"search.sampler: {exp.search.sampler!r} cannot search a list of subspaces; "
                          "use sampler: grid (or one space of ranges)")
    if exp.train.launcher == "in_trial" and exp.train.workers > 1:
        raise ConfigError(
            f"train.launcher: in_trial runs one worker, but train.workers is {exp.train.workers}; "
            "use launcher: ray_train (or auto) for several"
        )
    if exp.search.sampler == "grid":
        continuous = [n for n, p in exp.params().items() if p.kind not in ("fixed", "choice")]
        if continuous:
            raise ConfigError(
                f"search.sampler: grid needs every searched parameter to be a choice; "
                f"{', '.join(continuous)} {'is' if len(continuous) == 1 else 'are'} a range"
            )
    batch_sizes = exp.param("batch_size").values
    if exp.param("batch_size").kind == "int" or any(b % exp.train.workers for b in batch_sizes):
        if exp.train.workers > 1:
            raise ConfigError(
                f"space.batch_size: {list(batch_sizes)!r} must be fixed or chosen from multiples of "
                f"train.workers ({exp.train.workers}), so every worker gets an equal share"
            )
    _check_weights(exp)
    if any(o.name == "udr" for o in exp.search.objectives) and exp.search.replicates < 2:
        raise ConfigError("search.objectives: udr compares a trial's replicates; set search.replicates >= 2")
    return exp  # data.exclude names the dataset's factors: checked once it is open (pipeline)


def data_from_dict(raw: Any) -> DataConfig:
    """A :class:`DataConfig` from a run's stored ``experiment.json`` (regions as ``asdict`` wrote them)."""
    raw = dict(raw or {})
    regions = tuple(Region(dict(r["bounds"])) for r in raw.pop("exclude", None) or ())
    return dataclasses.replace(DataConfig(**_section(DataConfig, raw, "data")), exclude=regions)


def evaluation_from_dict(raw: Any) -> EvaluationConfig:
    """An :class:`EvaluationConfig` from a mapping (a run's stored ``experiment.json``)."""
    return EvaluationConfig(**_section(EvaluationConfig, raw, "evaluation"))


def search_from_dict(raw: Any) -> SearchConfig:
    """A :class:`SearchConfig` from a run's stored ``experiment.json`` (objectives as stored)."""
    raw = dict(raw or {})
    if isinstance(raw.get("objectives"), list) and raw["objectives"] and "name" in raw["objectives"][0]:
        raw["objectives"] = [{o["name"]: o["direction"]} for o in raw["objectives"]]  # asdict() form
    return SearchConfig(**_section(SearchConfig, raw, "search"))


def anomaly_from_dict(raw: Any) -> AnomalyConfig:
    """An :class:`AnomalyConfig` from a mapping (a run's stored ``experiment.json``)."""
    return AnomalyConfig(**_section(AnomalyConfig, raw, "anomaly"))


def load_experiment(path: str | Path) -> Experiment:
    """Read a search-space YAML file; every problem is one :class:`ConfigError` line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read search space ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file (byte {err.start} is not UTF-8); "
                          "expected a search-space YAML") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    try:
        return experiment_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
