"""A run's files at a URI: a local path or ``s3://bucket/prefix``, through s3fs (also for Ray).

Credentials come from the usual AWS environment, profile or instance role; an S3-compatible store
is reached through ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (``--endpoint-url`` sets it).

- Writes are atomic: a local file is written beside its target and renamed over it; an object
  store's PUT is atomic already. A reader sees the old file or the new one, never half a file.
- Tables written by several processes are *datasets*: a folder of ``part-<uuid>.parquet`` files,
  one per write, so writers never rewrite each other's rows; :func:`read_dataset` reads the whole
  folder as one table. Every part carries the schema version and is checked on read.
- Storage problems (unreachable endpoint, missing bucket, no permission) become one-line
  :class:`~disentune.errors.UserError`s that never include credentials.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path
from typing import IO, Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from disentune.errors import UserError
from disentune.reports.schema import check_version


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def normalize(uri: str | Path) -> str:
    """Local paths become absolute; URIs are kept, without a trailing slash."""
    uri = str(uri)
    return uri.rstrip("/") if is_remote(uri) else str(Path(uri.removeprefix("file://")).resolve())


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and the path within it."""
    uri = normalize(uri)
    if uri.startswith("s3://"):
        import s3fs

        endpoint = endpoint_url()
        fs = s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": endpoint} if endpoint else {},
            config_kwargs={"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 2}},
            skip_instance_cache=True,
        )
        fs.retries = 2
        return fs, uri.removeprefix("s3://")
    if is_remote(uri):
        return fsspec.core.url_to_fs(uri)
    return LocalFileSystem(), uri


def arrow_filesystem(uri: str) -> tuple[pa.fs.FileSystem | None, str]:
    """For Ray's ``storage_filesystem``: ``(None, absolute path)`` locally, else a pyarrow fs.

    The pyarrow filesystem wraps the same s3fs client as :func:`filesystem` (``PyFileSystem`` over
    ``FSSpecHandler``) rather than pyarrow's native ``S3FileSystem``: the native one starts the AWS
    C++ SDK, whose shutdown at interpreter exit crashes the process now and then (a segmentation
    fault after a successful run; apache/arrow#38352), and one S3 client means one configuration.
    """
    uri = normalize(uri)
    if not uri.startswith("s3://"):
        return None, uri
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = filesystem(uri)
    return PyFileSystem(FSSpecHandler(fs)), path


def storage_error(uri: str, err: BaseException) -> UserError:
    """A one-line message for a storage failure; names the location, never credentials."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        reason = "the bucket does not exist"
    elif "Could not connect" in text or "EndpointConnection" in type(err).__name__ or "Connect" in text:
        reason = f"cannot reach the storage endpoint ({endpoint_url() or 'AWS default'})"
    elif isinstance(err, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        reason = "permission denied"
    else:
        reason = f"{type(err).__name__}: {text[:200]}"
    return UserError(f"{uri}: {reason}")


def check_writable(uri: str) -> None:
    """Write and delete a probe under ``uri``; a clear error if the location cannot be used."""
    fs, path = filesystem(uri)
    probe = join(path, f".disentune-probe-{uuid.uuid4().hex}")
    try:
        if isinstance(fs, LocalFileSystem):
            if fs.exists(path) and not fs.isdir(path):
                raise UserError(f"{uri}: exists and is not a directory")
            fs.makedirs(path, exist_ok=True)
        with fs.open(probe, "wb") as f:
            f.write(b"")
        fs.rm(probe)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - every storage failure becomes one line
        raise storage_error(uri, err) from None


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    try:
        return fs.exists(path)
    except Exception as err:  # noqa: BLE001
        raise storage_error(uri, err) from None


def _atomic_write(uri: str, write: Callable[[IO[bytes]], None]) -> None:
    fs, path = filesystem(uri)
    try:
        if not isinstance(fs, LocalFileSystem):
            buffer = io.BytesIO()  # serialise first: a failure never leaves a partial object
            write(buffer)
            fs.pipe_file(path, buffer.getvalue())
            return
        parent, name = path.rsplit("/", 1)
        fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
        try:
            with fs.open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except UserError:
        raise
    except OSError as err:
        raise storage_error(uri, err) from None
    except Exception as err:  # noqa: BLE001 - botocore errors are not OSErrors
        if type(err).__module__.startswith(("botocore", "aiobotocore", "s3fs")):
            raise storage_error(uri, err) from None
        raise


def write_bytes(uri: str, data: bytes) -> None:
    _atomic_write(uri, lambda f: f.write(data))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise UserError(f"{uri}: no such file") from None
    except Exception as err:  # noqa: BLE001
        raise storage_error(uri, err) from None


def write_table(table: pa.Table, uri: str) -> None:
    _atomic_write(uri, lambda f: pq.write_table(table, f))


def _parse(data: bytes, uri: str) -> pa.Table:
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{uri}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    check_version(table.schema, uri)
    return table


def read_table(uri: str) -> pa.Table:
    """Read one table, refusing files that are not Parquet or come from a newer schema."""
    try:
        data = read_bytes(uri)
    except UserError as err:
        raise UserError(str(err).replace("no such file", "no such table")) from None
    return _parse(data, uri)


def append_table(table: pa.Table, dataset_uri: str, key: str | None = None) -> str:
    """Add ``table`` to a dataset folder as a new part; returns the part's URI.

    With ``key`` the part's name is derived from it, so writing the same key again replaces that
    part instead of adding rows: a re-run of the same unit of work is idempotent by construction.
    """
    name = hashlib.sha256(key.encode()).hexdigest()[:32] if key is not None else uuid.uuid4().hex
    part = join(dataset_uri, f"part-{name}.parquet")
    write_table(table, part)
    return part


def read_dataset(dataset_uri: str, schema: pa.Schema) -> pa.Table:
    """All parts of a dataset folder as one table (empty if the folder does not exist yet)."""
    fs, path = filesystem(dataset_uri)
    try:
        names = sorted(p for p in fs.find(path) if p.rsplit("/", 1)[-1].startswith("part-")
                       and p.endswith(".parquet"))
    except FileNotFoundError:
        names = []
    except Exception as err:  # noqa: BLE001
        raise storage_error(dataset_uri, err) from None
    tables = []
    for name in names:
        where = join(dataset_uri, name.rsplit("/", 1)[-1])
        tables.append(_parse(fs.cat_file(name), where).select(schema.names).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()
