"""Plugins: a researcher's installed package adds variants, metrics and datasets by entry point.

A plugin declares, in its ``pyproject.toml``::

    [project.entry-points."disentune.models"]
    sigma_vae = "my_package.model:VARIANT"        # a disentune.models.base.Variant
    [project.entry-points."disentune.metrics"]
    active_units = "my_package.metric:METRIC"     # a disentune.metrics.base.Metric
    [project.entry-points."disentune.datasets"]
    my_images = "my_package.data:make_dataset"    # a callable(*, resolution, path=None)

Each entry point names the object to register under the entry point's name (the object is not
registered by a decorator on import: the registry registers it, remembering the distribution and
the entry point it came from). Entry points are read from the installed distributions
(``importlib.metadata``) and, in a submitted Ray job, from ``DISENTUNE_PLUGINS``: plugin source
trees inside the job's working directory travel with the job as ``py_modules`` entries
(:func:`plugins_in`), the same way as disentune's own package.

A plugin that fails to import, whose object breaks the interface, or whose name is a built-in one
(or another plugin's) is not registered; its problem is one line naming the plugin and the entry
point, and every command refuses to start while it is installed (``disentune plugins`` lists it).
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

ENV = "DISENTUNE_PLUGINS"
GROUPS = ("disentune.models", "disentune.metrics", "disentune.datasets", "disentune.detectors")


@dataclass(frozen=True)
class PluginEntry:
    """One entry point of one plugin distribution."""

    group: str
    name: str
    value: str  # "module:attribute"
    dist: str
    version: str

    @property
    def where(self) -> str:
        return f"plugin {self.dist} {self.version} (entry point {self.group}: {self.name} = {self.value})"


def installed_entries() -> list[PluginEntry]:
    """Entry points of the installed distributions, in the disentune groups."""
    found = []
    for group in GROUPS:
        for ep in metadata.entry_points(group=group):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "?"
            found.append(PluginEntry(group, ep.name, ep.value, dist, version))
    return found


def shipped_entries() -> list[PluginEntry]:
    """Entry points a submitted job was given in ``DISENTUNE_PLUGINS`` (see :func:`plugins_in`)."""
    return [PluginEntry(**e) for e in json.loads(os.environ.get(ENV) or "[]")]


def _check(group: str, name: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered in ``group`` under ``name``, or None if it can."""
    if group == "disentune.models":
        from disentune.models.base import Variant

        if not isinstance(obj, Variant):
            return f"is a {type(obj).__name__}, not a disentune.models.base.Variant"
        if obj.name != name or not callable(obj.build) or not callable(obj.make_step):
            return f"is Variant {obj.name!r} (its name must be the entry point's, with callable build and make_step)"
    elif group == "disentune.metrics":
        from disentune.metrics.base import Kind, Metric

        if not isinstance(obj, Metric):
            return f"is a {type(obj).__name__}, not a disentune.metrics.base.Metric"
        kinds = typing.get_args(Kind)
        if obj.kind not in kinds:
            return f"has kind {obj.kind!r}; choose from {', '.join(kinds)}"
        if obj.name != name or not callable(obj.compute) or not obj.values:
            return f"is Metric {obj.name!r} (its name must be the entry point's, with a compute and values)"
    elif group == "disentune.detectors":
        from disentune.anomaly.catalog import DetectorSpec

        if not isinstance(obj, DetectorSpec) or obj.name != name:
            return f"is a {type(obj).__name__}, not a disentune.anomaly.catalog.DetectorSpec named {name!r}"
        if (obj.make if obj.kind == "features" else obj.score) is None:
            return f"is a {obj.kind} detector without its {'make' if obj.kind == 'features' else 'score'}"
    elif not callable(obj):
        return f"is a {type(obj).__name__}, not a callable(*, resolution, path=None) returning a dataset"
    return None


def register_plugins() -> list[str]:
    """Register every plugin entry point (shipped ones first); returns one line per problem."""
    from disentune import registry

    tables = {"disentune.models": registry.MODELS, "disentune.metrics": registry.METRICS,
              "disentune.datasets": registry.DATASETS, "disentune.detectors": registry.DETECTORS}
    problems, seen = [], set()
    for entry in [*shipped_entries(), *installed_entries()]:
        key = (entry.group, entry.name, entry.value)
        if key in seen:  # a shipped plugin that is also installed on this node: one registration
            continue
        seen.add(key)
        table = tables[entry.group]
        if entry.name in table._entries:
            owner = table._origins[entry.name]
            problems.append(f"{entry.where}: the name {entry.name!r} is already the {table.kind} of {owner}; "
                            "a plugin cannot replace it, rename the entry point")
            continue
        module, _, attribute = entry.value.partition(":")
        try:
            obj = metadata.EntryPoint(entry.name, entry.value, entry.group).load()
        except Exception as err:  # noqa: BLE001 - any import failure of a plugin is one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            problems.append(f"{entry.where}: failed to import ({type(err).__name__}: {first[:200]})")
            continue
        if not attribute:
            problems.append(f"{entry.where}: names module {module!r}, not an object in it (module:attribute)")
            continue
        why = _check(entry.group, entry.name, obj)
        if why:
            problems.append(f"{entry.where}: {entry.value} {why}")
            continue
        table.register(entry.name, origin=entry.where.removeprefix("plugin "))(obj)
    return problems


def listing() -> list[tuple[str, str, str]]:
    """``(kind, name, origin)`` of every registered variant, metric and dataset."""
    from disentune import registry

    rows = []
    for table in (registry.MODELS, registry.METRICS, registry.DATASETS, registry.DETECTORS):
        rows += [(table.kind, name, table.origin(name)) for name in table.entries()]
    return rows


# -- plugins that travel with a Ray job ------------------------------------------------------------
def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(path.read_text(encoding="utf-8"))


def plugins_in(working_dir: Path, skip: Callable[[Path], bool] = lambda p: False) -> tuple[list[Path], list[PluginEntry]]:
    """Plugin source trees inside ``working_dir`` (a ``pyproject.toml`` below its root that
    declares disentune entry points): their top-level package folders (for ``py_modules``) and
    their entry points (for ``DISENTUNE_PLUGINS``)."""
    packages: list[Path] = []
    entries: list[PluginEntry] = []
    for project in sorted(working_dir.glob("**/pyproject.toml")):
        root = project.parent
        if root == working_dir or skip(root) or any(p.startswith(".") for p in root.relative_to(working_dir).parts):
            continue
        spec = _read_toml(project).get("project", {})
        groups = {g: v for g, v in (spec.get("entry-points") or {}).items() if g in GROUPS}
        if not groups:
            continue
        source = root / "src" if (root / "src").is_dir() else root
        packages += sorted(p for p in source.iterdir() if (p / "__init__.py").is_file())
        entries += [PluginEntry(group, name, value, spec.get("name", root.name), spec.get("version", "0"))
                    for group, table in groups.items() for name, value in table.items()]
    return packages, entries


def encode(entries: list[PluginEntry]) -> str:
    return json.dumps([asdict(e) for e in entries])
