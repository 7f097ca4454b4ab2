"""Files at a URI: a local path or ``s3://bucket/prefix``, through s3fs (also for Ray).

Every stage that reads or writes a run (search, evaluators, reports) goes through here; the
Parquet tables on top of it are :mod:`disentune.reports.storage`.

Credentials come from the usual AWS environment, profile or instance role; an S3-compatible store
is reached through ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (``--endpoint-url`` sets it).

- Writes are atomic: a local file is serialised in memory, written beside its target and renamed
  over it; an object is serialised first and sent in one PUT, which S3 applies whole or not at
  all. A reader sees the old file or the new one, never half a file, and a failed write leaves no
  ``*.part`` file behind.
- **Transient S3 failures are retried.** Every S3 request (tables, checkpoints, and Ray Train's
  and Tune's own uploads and syncs, which reach S3 through the same client, see
  :func:`arrow_filesystem`) that fails with a connection error (refused, reset, timed out), an
  HTTP 5xx, or throttling (``SlowDown``, ``Throttling``, ``RequestTimeout``) is retried with
  exponential backoff: 0.5 s, doubling, at most 10 s between attempts (+-20 % jitter), until
  ``DISENTUNE_STORAGE_RETRY_S`` seconds (default 90) have passed since the request's first
  attempt; then it fails with :class:`StorageUnavailable`, one line naming the endpoint. The
  probe of a location before a sweep writes anything waits at most ``PROBE_RETRY_S`` (10 s), so
  a wrong endpoint is still refused within seconds, in one line and without the warning. A
  request's first failure logs one warning (``... retrying for up to N s``) on the
  ``disentune.storage`` logger. ``DISENTUNE_STORAGE_RETRY_S=0`` turns retrying off.
  The budget is read in the process that creates the client and travels with it (pickled into
  Ray's trial and worker processes). Errors that retrying cannot fix (no such bucket, access
  denied, no credentials) fail at once.
- Storage problems (unreachable endpoint, missing bucket, no permission, a full disk) become
  one-line :class:`~disentune.errors.UserError`s that never include credentials; a full local
  disk names the path and the space the write needed (:func:`no_space`).
- Each call gets a fresh s3fs client (``skip_instance_cache``): a shared one would keep its
  directory-listing cache, and a reader could miss the parts other processes just wrote.
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import os
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import IO, Any, Awaitable, Callable

import fsspec
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from disentune.errors import UserError

RETRY_ENV = "DISENTUNE_STORAGE_RETRY_S"
DEFAULT_RETRY_S = 90.0  # how long one S3 request keeps retrying transient failures
PROBE_RETRY_S = 10.0  # check_writable's budget: a wrong endpoint is refused promptly
FIRST_DELAY_S, MAX_DELAY_S = 0.5, 10.0  # backoff between attempts: doubling, capped

log = logging.getLogger("disentune.storage")


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


def retry_budget() -> float:
    """``$DISENTUNE_STORAGE_RETRY_S`` (seconds, >= 0), default :data:`DEFAULT_RETRY_S`."""
    text = os.environ.get(RETRY_ENV, "").strip()
    if not text:
        return DEFAULT_RETRY_S
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{RETRY_ENV}={text!r}: not a number of seconds") from None
    if not value >= 0:
        raise UserError(f"{RETRY_ENV}={text!r}: must be 0 or more seconds")
    return value


# ---------------------------------------------------------------- S3: retries with backoff

class StorageUnavailable(ConnectionError):
    """An S3 request that kept failing transiently for the whole retry budget. Never retried
    again by an enclosing retry loop (s3fs's or ours)."""


_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
              "ServiceUnavailable", "InternalError", "RequestLimitExceeded", "TooManyRequestsException"}


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def transient(err: BaseException) -> bool:
    """Whether retrying may help: connection refused/reset/timed out, HTTP 5xx, throttling.
    Looks through the exception's causes (s3fs turns a ``ClientError`` into an ``OSError``)."""
    import botocore.exceptions as bx

    try:
        import aiohttp
        web = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
    except ImportError:  # pragma: no cover - s3fs depends on aiohttp
        web = ()
    for e in _chain(err):
        if isinstance(e, StorageUnavailable):
            return False
        if isinstance(e, bx.ClientError):
            response = getattr(e, "response", None) or {}
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return status >= 500 or status == 429 or response.get("Error", {}).get("Code") in _THROTTLED
        if isinstance(e, (bx.ConnectionError, bx.HTTPClientError, bx.IncompleteReadError, *web)):
            return True
        if isinstance(e, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return True
        if isinstance(e, OSError) and e.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT,
                                                  errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPIPE):
            return True
    return False


def _s3_class():
    import s3fs
    from fsspec.asyn import sync_wrapper

    class RetryingS3FileSystem(s3fs.S3FileSystem):
        """s3fs whose every request retries transient failures for ``retry_s`` seconds (see the
        module docstring); ``retry_s`` is a constructor argument so that it survives pickling."""

        retries = 3  # s3fs's own quick retries inside each attempt (a dropped body read)

        def __init__(self, *args: Any, retry_s: float | None = None, quiet: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.retry_s = retry_budget() if retry_s is None else float(retry_s)
            self.quiet = quiet  # no "retrying" warning (the probe: its failure is the one line)

        async def _retrying(self, call: Callable[[], Awaitable[Any]], what: str) -> Any:
            began, delay, attempt = time.monotonic(), FIRST_DELAY_S, 1
            while True:
                try:
                    return await call()
                except Exception as err:  # sorted by transient(), the rest re-raised
                    if not transient(err):
                        raise
                    waited = time.monotonic() - began
                    pause = delay * random.uniform(0.8, 1.2)
                    if waited + pause > self.retry_s:
                        endpoint = endpoint_url() or "AWS default"
                        raise StorageUnavailable(
                            f"cannot reach the storage endpoint ({endpoint}): {what} gave up after "
                            f"{attempt} attempts in {waited:.0f} s (limit {self.retry_s:g} s, "
                            f"{RETRY_ENV}; last error {type(err).__name__})") from err
                    if attempt == 1 and not self.quiet:
                        log.warning("disentune: %s at %s failed (%s); retrying for up to %g s",
                                    what, endpoint_url() or "AWS", type(err).__name__, self.retry_s)
                    await asyncio.sleep(pause)
                    delay, attempt = min(2 * delay, MAX_DELAY_S), attempt + 1

        async def _call_s3(self, method: Any, *akwarglist: Any, **kwargs: Any) -> Any:
            base = super()._call_s3
            name = method if isinstance(method, str) else getattr(method, "__name__", "request")
            return await self._retrying(lambda: base(method, *akwarglist, **kwargs), name)

        call_s3 = sync_wrapper(_call_s3)

        async def _cat_file(self, path: str, *args: Any, **kwargs: Any) -> bytes:
            # the GET is retried by _call_s3; this retries a body that broke off midway
            base = super()._cat_file
            return await self._retrying(lambda: base(path, *args, **kwargs), "get_object")

    RetryingS3FileSystem.__module__ = __name__
    RetryingS3FileSystem.__qualname__ = "RetryingS3FileSystem"
    return RetryingS3FileSystem


def _retrying_class() -> type:
    """:class:`RetryingS3FileSystem`, built once on first use (s3fs is imported lazily)."""
    cls = globals().get("RetryingS3FileSystem")
    if cls is None:
        cls = globals()["RetryingS3FileSystem"] = _s3_class()
    return cls


def __getattr__(name: str) -> Any:  # ``disentune.storage.RetryingS3FileSystem``, for pickle
    if name == "RetryingS3FileSystem":
        return _retrying_class()
    raise AttributeError(name)


def filesystem(uri: str, *, retry_s: float | None = None,
               quiet: bool = False) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and the path within it; S3 requests retry transient failures for
    ``retry_s`` seconds (default ``$DISENTUNE_STORAGE_RETRY_S``, else 90), logging one warning
    when a request first fails unless ``quiet``."""
    uri = normalize(uri)
    if uri.startswith("s3://"):
        endpoint = endpoint_url()
        fs = _retrying_class()(
            client_kwargs={"endpoint_url": endpoint} if endpoint else {},
            # botocore's own retries off: RetryingS3FileSystem's backoff decides how long to wait
            config_kwargs={"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 0}},
            retry_s=retry_budget() if retry_s is None else retry_s,
            quiet=quiet,
            skip_instance_cache=True,
        )
        return fs, uri.removeprefix("s3://")
    if is_remote(uri):
        return fsspec.core.url_to_fs(uri)
    return LocalFileSystem(), uri


def arrow_filesystem(uri: str) -> tuple[pa.fs.FileSystem | None, str]:
    """For Ray's ``storage_filesystem``: ``(None, absolute path)`` locally, else a pyarrow fs.

    The pyarrow filesystem wraps the same retrying s3fs client as :func:`filesystem`
    (``PyFileSystem`` over ``FSSpecHandler``) rather than pyarrow's native ``S3FileSystem``, so
    Ray Train's checkpoint uploads and downloads and Tune's experiment syncs wait out an outage
    like every other write. (The native one also starts the AWS C++ SDK, whose shutdown at
    interpreter exit crashes the process now and then: a segmentation fault after a successful
    run; apache/arrow#38352.)
    """
    uri = normalize(uri)
    if not uri.startswith("s3://"):
        return None, uri
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = filesystem(uri)
    return PyFileSystem(FSSpecHandler(fs)), path


# ---------------------------------------------------------------- local disks: a full one

def size_text(nbytes: float | None) -> str:
    if nbytes is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def free_bytes(path: str | Path) -> int | None:
    """Free space on the filesystem that holds ``path`` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_no_space(err: BaseException) -> bool:
    """A full disk or quota: ``ENOSPC``/``EDQUOT``, or numpy's short write to a local file
    (``OSError: 409600 requested and 65408 written``, which carries no errno)."""
    for e in _chain(err):
        if isinstance(e, OSError) and (e.errno in (errno.ENOSPC, errno.EDQUOT)
                                       or (not e.errno and " requested and " in str(e) and str(e).endswith(" written"))):
            return True
    return False


def no_space(path: str | Path, needed: int | None) -> UserError:
    """The one-line error for a full disk: the path, what the write needed, what is free."""
    free = size_text(free_bytes(path))
    if needed is None:
        return UserError(f"{path}: no space left on the device ({free} free)")
    return UserError(f"{path}: no space left on the device: {size_text(needed)} needed, {free} free")


def full_disk(uri: str, needed: int = 1 << 20) -> UserError | None:
    """For a stage that failed while writing under the local ``uri`` (Ray Tune's own state, which
    it writes without temporary names): the one-line :func:`no_space` error when that disk has
    less than ``needed`` bytes free, else None (the failure was something else)."""
    if is_remote(uri):
        return None
    free = free_bytes(uri)
    return no_space(normalize(uri), needed) if free is not None and free < needed else None


def reserve(fd: int, nbytes: int, path: str | Path) -> None:
    """Allocate ``nbytes`` of the open file ``fd`` now (``posix_fallocate``), so that a full disk
    is one :func:`no_space` error here rather than a ``SIGBUS`` when a memory map of the file is
    written later (tmpfs and sparse files fail that way)."""
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            os.ftruncate(fd, 0)  # give back what was allocated, so the free space shown is true
            raise no_space(path, nbytes) from None
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem without fallocate
            raise


def reserve_file(tmp: str | Path, target: str | Path) -> None:
    """:func:`reserve` the whole current length of the file ``tmp`` (a memory map about to be
    filled), naming ``target`` in the error."""
    fd = os.open(tmp, os.O_RDWR)
    try:
        reserve(fd, os.fstat(fd).st_size, target)
    finally:
        os.close(fd)


def write_local(path: str | Path, data: bytes) -> None:
    """Write ``data`` to the local ``path`` atomically (beside it, then renamed); a full disk is
    one :func:`no_space` error and leaves no temporary file."""
    path = str(path)
    parent, name = os.path.split(path)
    tmp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.part")
    try:
        os.makedirs(parent, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        if not is_no_space(err):
            raise
        _unlink(tmp)
        raise no_space(path, len(data)) from None
    finally:
        _unlink(tmp)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- every stage's calls

def storage_error(uri: str, err: BaseException) -> UserError:
    """A one-line message for a storage failure; names the location, never credentials."""
    if isinstance(err, UserError):
        return err
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    unavailable = next((e for e in _chain(err) if isinstance(e, StorageUnavailable)), None)
    if unavailable is not None:
        reason = str(unavailable)
    elif is_no_space(err):
        return no_space(uri, None)
    elif "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        reason = "the bucket does not exist"
    elif "Could not connect" in text or "EndpointConnection" in type(err).__name__ or "Connect" in text:
        reason = f"cannot reach the storage endpoint ({endpoint_url() or 'AWS default'})"
    elif isinstance(err, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        reason = "permission denied"
    else:
        reason = f"{type(err).__name__}: {text[:200]}"
    return UserError(f"{uri}: {reason}")


def _storage_failure(err: BaseException) -> bool:
    return isinstance(err, OSError) or type(err).__module__.startswith(("botocore", "aiobotocore", "s3fs", "aiohttp"))


def check_writable(uri: str) -> None:
    """Write and delete a probe under ``uri``; a clear error if the location cannot be used.
    Transient S3 failures are retried for at most :data:`PROBE_RETRY_S` seconds."""
    fs, path = filesystem(uri, retry_s=min(PROBE_RETRY_S, retry_budget()), quiet=True)
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
    """Serialise with ``write(file)`` into memory, then store the bytes at ``uri`` atomically."""
    buffer = io.BytesIO()  # serialise first: a failure never leaves a partial file or object
    write(buffer)
    data = buffer.getvalue()
    fs, path = filesystem(uri)
    try:
        if isinstance(fs, LocalFileSystem):
            write_local(path, data)
        else:
            fs.pipe_file(path, data)
    except UserError:
        raise
    except Exception as err:  # botocore errors are not OSErrors
        if is_no_space(err):
            raise no_space(uri, len(data)) from None
        if _storage_failure(err):
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
