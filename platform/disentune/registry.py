"""Explicit registries: generator variants, metrics and datasets, by name.

Built-in entries are added by decorators in the modules that define them; those modules are
imported in exactly one place, :func:`_load`, the first time a registry is read. Then the
installed plugins' entry points are loaded (groups ``disentune.models``, ``disentune.metrics``,
``disentune.datasets``; see :mod:`disentune.plugins`): each names an object that is registered
under the entry point's name, and a plugin may never replace a built-in name. No eval, no
subclass scanning: the names listed here drive the CLI choices, config validation and test
parametrisation, and every name remembers where it came from (:meth:`Registry.origin`).

>>> from disentune.registry import MODELS
>>> "beta_tcvae" in MODELS.names()
True
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from disentune.errors import ConfigError, UserError

T = TypeVar("T")

# The modules whose decorators fill the registries; imported once, on first use.
_BUILTIN_MODULES = (
    "disentune.data.dsprites",
    "disentune.data.dsprites_variants",
    "disentune.data.shapes3d_procedural",
    "disentune.data.dsprites_npz",
    "disentune.data.shapes3d_h5",
    "disentune.data.mpi3d_npz",
    "disentune.data.smallnorb_mat",
    "disentune.data.cars3d_mat",
    "disentune.data.image_collection",
    "disentune.models.beta_vae",
    "disentune.models.beta_tcvae",
    "disentune.models.factor_vae",
    "disentune.models.infogan",
    "disentune.models.info_stylegan",
    "disentune.models.annealed_vae",
    "disentune.models.dip_vae",
    "disentune.metrics.mig",
    "disentune.metrics.dci",
    "disentune.metrics.sap",
    "disentune.metrics.modularity",
    "disentune.metrics.explicitness",
    "disentune.metrics.factor_vae_score",
    "disentune.metrics.beta_vae_score",
    "disentune.metrics.fid",
    "disentune.metrics.kid",
    "disentune.metrics.precision_recall",
    "disentune.metrics.attribute_control",
    "disentune.metrics.udr",
    "disentune.metrics.unsupervised",
    "disentune.metrics.irs",
    "disentune.anomaly.catalog",
)
BUILTIN = "built-in"
_loaded = False
PLUGIN_ERRORS: list[str] = []  # one line per plugin that could not be registered


def _load() -> None:
    """Import the built-in modules, then register the plugins' entry points (once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        from disentune.plugins import register_plugins

        PLUGIN_ERRORS.extend(register_plugins())


def _ready() -> None:
    """:func:`_load`, then refuse to go on with a broken plugin installed (its one line)."""
    _load()
    if PLUGIN_ERRORS:
        raise UserError(PLUGIN_ERRORS[0])


class Registry(Generic[T]):
    """A name -> object table; ``kind`` names the table in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str, origin: str = BUILTIN) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            self._origins[name] = origin
            return obj

        return add

    def names(self) -> tuple[str, ...]:
        _ready()
        return tuple(sorted(self._entries))

    def get(self, name: str) -> T:
        _ready()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        _ready()
        return name in self._entries

    def origin(self, name: str) -> str:
        """``built-in``, or the plugin distribution and entry point that registered ``name``."""
        _load()
        return self._origins[name]

    def entries(self) -> dict[str, T]:
        """Every registered name and object, plugins included, without refusing on a broken
        plugin (for ``disentune plugins``, which lists the problems too)."""
        _load()
        return dict(sorted(self._entries.items()))


MODELS: Registry = Registry("variant")
METRICS: Registry = Registry("metric")
DATASETS: Registry = Registry("dataset")
DETECTORS: Registry = Registry("detector")
BENCHMARKS: Registry = Registry("benchmark")  # benchmark families (local_defects@S names one)


def benchmark_family(name: str) -> tuple[object, str]:
    """``(family, argument)`` of a benchmark name (``local_defects@0.2``, ``file:URI``,
    ``creative``); one ``ConfigError`` line naming the choices for a name that is none."""
    base, sep, arg = name, "", ""
    for mark in (":", "@"):
        if mark in name:
            base, _, arg = name.partition(mark)
            sep = mark
            break
    if base in BENCHMARKS:
        family = BENCHMARKS.get(base)
        if family.separator == sep and family.accepts(arg):
            return family, arg
    choices = ", ".join(BENCHMARKS.get(n).describe or n for n in BENCHMARKS.names())
    raise ConfigError(f"unknown benchmark {name!r}; choose from {choices}")
