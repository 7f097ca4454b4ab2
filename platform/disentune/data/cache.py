"""Where datasets and trained feature networks are cached on each machine, and the entries of
the shared conversion cache.

Layout under ``$DISENTUNE_CACHE`` (default ``~/.cache/disentune``)::

    dsprites-r64-v1.npy                         procedural renders (data/dsprites.py)
    imported/<dataset>-<sha16>-r<R>-v1.npy      a converted published file or image collection:
                                                uint8 (n, C, R, R), channels first, row = flat index
    imported/<dataset>-<sha16>-r<R>-v1.json     its sidecar (a :class:`CacheEntry`)
    imported/hashes/<key>.json                  (uri, size, mtime or ETag) -> sha256 of the bytes
    imported/locks/*.lock                       fcntl locks: one conversion per node
    imported/staging/                           s3:// sources while they convert (then deleted)
    imported/conversions.log                    one JSON line per conversion done on this node

An entry exists once its sidecar does: the ``.npy`` is renamed into place first, the sidecar
second, both atomically, so a reader never sees half an entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from disentune.data.ground_truth import Factor

FORMAT_VERSION = 1


def cache_dir() -> Path:
    """``$DISENTUNE_CACHE`` or ``~/.cache/disentune``."""
    return Path(os.environ.get("DISENTUNE_CACHE") or Path.home() / ".cache" / "disentune")  # empty: unset


def imported_dir() -> Path:
    """The conversion cache's folder, ``<cache_dir>/imported``."""
    return cache_dir() / "imported"


@dataclass(frozen=True, eq=False)
class CacheEntry:
    """One converted dataset: ``images`` uint8 images ``(C, R, R)`` in ``path``.

    ``factors`` are the public factors in grid order (empty for an image collection); a nuisance
    variable of ``nuisance_size`` values is stored fastest (see data/ground_truth.py).
    """

    dataset: str
    source: str  # the URI it was converted from
    sha256: str  # of the source bytes (several files: of their names and hashes)
    resolution: int
    channels: int
    images: int
    factors: tuple[Factor, ...]
    nuisance_name: str | None
    nuisance_size: int
    seconds: float  # conversion time
    created: str  # ISO time
    path: Path  # the .npy

    @property
    def bytes(self) -> int:
        """Size on disk of the ``.npy`` and its sidecar."""
        return self.path.stat().st_size + sidecar_of(self.path).stat().st_size

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION, "dataset": self.dataset, "source": self.source,
            "sha256": self.sha256, "resolution": self.resolution, "channels": self.channels,
            "images": self.images, "bytes": self.path.stat().st_size,
            "factors": [{"name": f.name, "values": f.values.tolist(),
                         "labels": list(f.labels) if f.labels is not None else None}
                        for f in self.factors],
            "nuisance": ({"name": self.nuisance_name, "size": self.nuisance_size}
                         if self.nuisance_name else None),
            "seconds": round(self.seconds, 3), "created": self.created, "file": self.path.name,
        }

    @staticmethod
    def from_json(doc: dict[str, Any], path: Path) -> CacheEntry:
        nuisance = doc.get("nuisance") or {}
        return CacheEntry(
            dataset=doc["dataset"], source=doc["source"], sha256=doc["sha256"],
            resolution=int(doc["resolution"]), channels=int(doc["channels"]), images=int(doc["images"]),
            factors=tuple(Factor(f["name"], np.asarray(f["values"], dtype=np.float64),
                                 tuple(f["labels"]) if f.get("labels") is not None else None)
                          for f in doc["factors"]),
            nuisance_name=nuisance.get("name"), nuisance_size=int(nuisance.get("size", 1)),
            seconds=float(doc.get("seconds", 0.0)), created=str(doc.get("created", "")), path=path)


def entry_path(dataset: str, sha256: str, resolution: int) -> Path:
    """The ``.npy`` of a dataset's entry for a content hash and a resolution."""
    return imported_dir() / f"{dataset}-{sha256[:16]}-r{resolution}-v{FORMAT_VERSION}.npy"


def sidecar_of(npy: Path) -> Path:
    return npy.with_suffix(".json")


def read_entry(npy: Path) -> CacheEntry | None:
    """The entry whose ``.npy`` is ``npy``, or None unless both it and its sidecar exist."""
    sidecar = sidecar_of(npy)
    try:
        doc = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("format") != FORMAT_VERSION or not npy.exists():
        return None
    return CacheEntry.from_json(doc, npy)


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Atomically (beside it, then renamed); a full disk is one line naming ``path``."""
    from disentune.storage import write_local

    write_local(path, json.dumps(doc, indent=1).encode())


def list_cache() -> list[CacheEntry]:
    """Every converted dataset in this machine's cache, by dataset then resolution."""
    root = imported_dir()
    entries = [e for p in sorted(root.glob("*.json")) if (e := read_entry(p.with_suffix(".npy")))]
    return sorted(entries, key=lambda e: (e.dataset, e.resolution, e.created))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl.flock`` on ``path`` (created if needed): other processes of this node
    that ask for the same lock wait until it is released."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
