"""One way every stage opens a run's dataset: by registered name, resolution and path."""

from __future__ import annotations

from typing import Any

from disentune.data.ground_truth import ImageData


def open_dataset(cfg: Any) -> ImageData:
    """The dataset of a ``DataConfig`` (``dataset``, ``resolution``, ``path``), ready to read:
    procedural data rendered into the cache, a published file or image collection converted
    into it (each once per machine; see ``data.importer``)."""
    from disentune.registry import DATASETS

    data = DATASETS.get(cfg.dataset)(resolution=cfg.resolution, path=getattr(cfg, "path", None))
    render = getattr(data, "render", None)
    if callable(render):
        render()
    return data


def data_key(name: str, data: ImageData) -> str:
    """A name for a run's dataset that also says which file it came from: the registered name,
    and for converted files the first 12 hex digits of their content hash (so the
    dataset-factor network of one Shapes3D file is never reused for another)."""
    entry = getattr(data, "entry", None)
    sha = getattr(entry, "sha256", None)
    return f"{name}-{sha[:12]}" if sha else name
