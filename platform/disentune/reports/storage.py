"""Read and write a run's files at a URI: a local path or ``s3://bucket/key`` (fsspec).

Writes are atomic: a local file is written beside its target and renamed over it; an object
store's PUT is atomic already. A reader sees the old file or the new one, never half a file.
"""

from __future__ import annotations

import io
import uuid
from typing import Callable, IO

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from disentune.errors import UserError
from disentune.reports.schema import check_version


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def _atomic_write(uri: str, write: Callable[[IO[bytes]], None]) -> None:
    fs, path = fsspec.core.url_to_fs(uri)
    if not isinstance(fs, LocalFileSystem):
        with fs.open(path, "wb") as f:
            write(f)
        return
    parent, name = path.rsplit("/", 1)
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
    try:
        with fs.open(tmp, "wb") as f:
            write(f)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def write_bytes(uri: str, data: bytes) -> None:
    _atomic_write(uri, lambda f: f.write(data))


def write_table(table: pa.Table, uri: str) -> None:
    _atomic_write(uri, lambda f: pq.write_table(table, f))


def read_table(uri: str) -> pa.Table:
    """Read one table, refusing files that are not Parquet or come from a newer schema."""
    fs, path = fsspec.core.url_to_fs(uri)
    try:
        with fs.open(path, "rb") as f:
            table = pq.read_table(io.BytesIO(f.read()))
    except FileNotFoundError:
        raise UserError(f"{uri}: no such table") from None
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{uri}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    check_version(table.schema, uri)
    return table
