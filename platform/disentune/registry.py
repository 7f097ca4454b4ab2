"""Explicit registries: generator variants, metrics and datasets, by name.

Entries are added by decorators in the modules that define them; those modules are imported in
exactly one place, :func:`_load_builtin`, the first time a registry is read. No eval, no subclass
scanning: the names listed here drive the CLI choices, config validation and test parametrisation.

>>> from disentune.registry import MODELS
>>> "beta_tcvae" in MODELS.names()
True
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from disentune.errors import ConfigError

T = TypeVar("T")

# The modules whose decorators fill the registries; imported once, on first use.
_BUILTIN_MODULES = (
    "disentune.data.dsprites",
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
)
_loaded = False


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


class Registry(Generic[T]):
    """A name -> object table; ``kind`` names the table in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def names(self) -> tuple[str, ...]:
        _load_builtin()
        return tuple(sorted(self._entries))

    def get(self, name: str) -> T:
        _load_builtin()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        _load_builtin()
        return name in self._entries


MODELS: Registry = Registry("variant")
METRICS: Registry = Registry("metric")
DATASETS: Registry = Registry("dataset")
