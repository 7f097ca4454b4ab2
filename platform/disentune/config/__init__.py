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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from disentune.config.checks import Check, _checked, _fail, _float, _int, _name, _one_of, _registered, _section, uri_scheme
from disentune.config.sections import (
    DEFAULT_DETECTORS,
    DEFAULT_OBJECTIVES,
    DEFAULT_SUITE,
    MLFLOW_SCHEMES,
    AnomalyConfig,
    DataConfig,
    EvaluationConfig,
    Objective,
    SearchConfig,
    TrackingConfig,
    TrainConfig,
    WandbConfig,
    tracking_from_dict,
)
from disentune.data.ground_truth import Region
from disentune.errors import ConfigError

__all__ = [
    "DEFAULT_DETECTORS", "DEFAULT_OBJECTIVES", "DEFAULT_SUITE", "MLFLOW_SCHEMES", "SEARCHABLE", "AnomalyConfig",
    "Check", "DataConfig", "EvaluationConfig", "Experiment", "Objective", "ParamSpec", "SearchConfig",
    "Searchable", "TrackingConfig", "TrainConfig", "WandbConfig", "anomaly_from_dict", "data_from_dict",
    "evaluation_from_dict", "experiment_from_dict", "load_experiment", "search_from_dict", "tracking_from_dict",
    "uri_scheme",
]


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
