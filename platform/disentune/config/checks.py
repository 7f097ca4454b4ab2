"""The checks every config field carries: each takes ``(value, where)`` and returns the value as
the config stores it, or raises one :class:`~disentune.errors.ConfigError` line naming the key
(``where``), the value and what is allowed. Names (variants, datasets, metrics, detectors,
benchmarks) are looked up in the registries, never imported from a string.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import field
from typing import Any, Callable
from urllib.parse import urlparse

from disentune.data.ground_truth import Region
from disentune.errors import ConfigError

Check = Callable[[Any, str], Any]

# tracking URI schemes MLflow's own stores understand (no scheme: a local folder, a file store)
MLFLOW_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


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


# Ray's own resources, set by their own keys (cpus_per_worker, gpus_per_worker) or not per worker
_RAY_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


def _resources(value: Any, where: str) -> dict[str, float]:
    """``{name: amount}``: custom Ray resources (``ray start --resources``) a worker also reserves."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, value, "a mapping of custom resource name to a positive amount, e.g. {spot: 1}")
    out = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.:/-]*", name):
            raise _fail(f"{where}.{name}", name, "a resource name (letters, digits, _ . : / -)")
        if name in _RAY_RESOURCES:
            raise ConfigError(f"{where}.{name}: not a custom resource; CPU and GPU per worker are "
                              "train.cpus_per_worker and train.gpus_per_worker")
        out[name] = _float(0.0, 1e9, open_low=True)(amount, f"{where}.{name}")
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
