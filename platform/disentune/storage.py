"""Files at a URI: a local path or ``s3://bucket/prefix``, through s3fs (also for Ray).

Every stage that reads or writes a run (search, evaluators, reports) goes through here; the
Parquet tables on top of it are :mod:`disentune.reports.storage`.

Credentials come from the usual AWS environment, profile or instance role; an S3-compatible store
is reached through ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (``--endpoint-url`` sets it).

- Writes are atomic: a local file is written beside its target and renamed over it; an object
  store's PUT is atomic already. A reader sees the old file or the new one, never half a file.
- Storage problems (unreachable endpoint, missing bucket, no permission) become one-line
  :class:`~disentune.errors.UserError`s that never include credentials.
- Each call gets a fresh s3fs client (``skip_instance_cache``): a shared one would keep its
  directory-listing cache, and a reader could miss the parts other processes just wrote.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import IO, Callable

import fsspec
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from disentune.errors import UserError


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


def atomic_write(uri: str, write: Callable[[IO[bytes]], None]) -> None:
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
    atomic_write(uri, lambda f: f.write(data))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise UserError(f"{uri}: no such file") from None
    except Exception as err:  # noqa: BLE001
        raise storage_error(uri, err) from None
