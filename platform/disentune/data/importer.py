"""Published files and image collections into the shared cache, once per node.

Each file dataset registers a :class:`Reader`: what its path must be (a file, a folder, either),
which files in it are its files, and how to read them into a
:class:`~disentune.data.convert.Conversion`. :func:`ensure` does the rest, the same way for all:

1. list the source files (local or ``s3://``; a missing path is one line);
2. under a per-(source, resolution) ``fcntl`` lock, look the remembered content hash up
   (``(uri, size, mtime or ETag) -> sha256``, for a folder of its whole listing); if the entry
   for that hash and resolution exists, that is the answer: nothing is read, hashed or downloaded;
3. otherwise stage the files (``s3://`` objects are streamed into the node's cache; local files
   are hashed in place), and under the entry's own lock convert them unless another process
   just did. A second process asking for the same data waits for the first, then reads its entry.

The registered constructors (``DATASETS.get(name)(resolution=R, path=URI)``) call :func:`load`;
the CLI calls :func:`import_dataset` and :func:`~disentune.data.cache.list_cache`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from disentune import storage
from disentune.data.cache import CacheEntry, entry_path, imported_dir, list_cache, locked, read_entry
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.convert import Conversion, convert
from disentune.data.sources import (SourceFile, list_source, remember_content_hash, remembered_content_hash,
                                    staged)
from disentune.errors import UserError

__all__ = ["Reader", "ensure", "load", "import_dataset", "list_cache"]

MIN_RESOLUTION, MAX_RESOLUTION = 4, 1024


def _any_files(files: list[SourceFile], uri: str) -> list[SourceFile]:
    if not files:
        raise UserError(f"{uri}: holds none of the dataset's files")
    return files


@dataclass(frozen=True)
class Reader:
    """How one dataset's files are found and read (see the module docstring).

    ``open(paths, files, resolution)`` gets the local paths of ``files`` (in the same order; the
    ``SourceFile.uri`` names a file in messages) and returns the conversion, having checked
    every key, dtype, shape and the grid; it may raise :class:`UserError` while converting too.
    """

    name: str
    folder: bool | None  # True: a folder, False: a file, None: either
    path_help: str  # what data.path must be, for messages
    accept: Callable[[str], bool]
    open: Callable[[list[Path], list[SourceFile], int], Conversion]
    select: Callable[[list[SourceFile], str], list[SourceFile]] = _any_files


def _check_resolution(name: str, resolution: int) -> None:
    if not isinstance(resolution, int) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise UserError(f"{name}: resolution must be an integer in [{MIN_RESOLUTION}, "
                        f"{MAX_RESOLUTION}], got {resolution!r}")


def _lock_name(reader: Reader, uri: str, files: list[SourceFile], resolution: int) -> str:
    key = json.dumps([reader.name, uri, resolution, [(f.name, f.size, f.version) for f in files]])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def ensure(reader: Reader, uri: str, resolution: int) -> CacheEntry:
    """The cache entry of ``reader``'s data at ``uri`` at ``resolution``, converting it if needed."""
    _check_resolution(reader.name, resolution)
    uri = storage.normalize(uri)
    files = reader.select(list_source(uri, folder=reader.folder, accept=reader.accept), uri)
    with locked(imported_dir() / "locks" / f"{_lock_name(reader, uri, files, resolution)}.lock"):
        known = remembered_content_hash(files)
        if known and (entry := read_entry(entry_path(reader.name, known, resolution))):
            return entry
        with staged(files) as (paths, sha256):
            remember_content_hash(files, sha256)
            target = entry_path(reader.name, sha256, resolution)
            with locked(target.with_suffix(".lock")):
                if entry := read_entry(target):
                    return entry
                conversion = reader.open(paths, files, resolution)
                return convert(conversion, target, dataset=reader.name, source=uri, sha256=sha256,
                               resolution=resolution)


def load(reader: Reader, path: str | None, resolution: int) -> CachedGroundTruth | CachedImages:
    """The dataset object of a registered file dataset (``path=None`` is refused)."""
    if path is None or not str(path).strip():
        raise UserError(f"{reader.name}: data.path is required: {reader.path_help} (local or s3://)")
    entry = ensure(reader, str(path), resolution)
    kind = CachedGroundTruth if entry.factors else CachedImages
    return kind(entry, dataset=reader.name, uri=storage.normalize(str(path)))


def import_dataset(name: str, uri: str, resolution: int) -> CacheEntry:
    """Convert dataset ``name`` from ``uri`` at ``resolution`` into this node's cache (once)."""
    from disentune.registry import DATASETS

    data = DATASETS.get(name)(resolution=resolution, path=uri)
    entry = getattr(data, "entry", None)
    if not isinstance(entry, CacheEntry):
        raise UserError(f"{name}: is rendered procedurally and reads no file; "
                        "`disentune data render` renders it")
    return entry
