"""storage.py without a server: which S3 failures are retried, the backoff's budget, the one-line
errors for an endpoint that stays down and for a full disk, and the budget surviving pickling."""

from __future__ import annotations

import asyncio
import errno
import itertools
import pickle
import time

import pytest
from disentune import storage
from disentune.errors import UserError


def client_error(code: str, status: int):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


def test_connection_errors_5xx_and_throttling_are_retried_and_the_rest_is_not():
    from botocore.exceptions import (
        ConnectionClosedError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    assert storage.transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert storage.transient(ConnectionClosedError(endpoint_url="http://127.0.0.1:1"))
    assert storage.transient(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert storage.transient(client_error("InternalError", 500))
    assert storage.transient(client_error("ServiceUnavailable", 503))
    assert storage.transient(client_error("SlowDown", 503))
    wrapped = OSError(errno.EREMOTEIO, "We encountered an internal error")  # as s3fs translates a 500
    wrapped.__cause__ = client_error("InternalError", 500)
    assert storage.transient(wrapped)
    assert not storage.transient(client_error("NoSuchBucket", 404))
    assert not storage.transient(client_error("AccessDenied", 403))
    assert not storage.transient(NoCredentialsError())
    assert not storage.transient(FileNotFoundError("s3://b/k"))
    assert not storage.transient(storage.StorageUnavailable("gave up already"))


def _fs(retry_s: float):
    fs, _ = storage.filesystem("s3://bucket/x", retry_s=retry_s)
    return fs


def test_a_request_that_keeps_failing_gives_up_after_its_budget_in_one_line(monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    fs, calls = _fs(2.0), []

    async def down():
        calls.append(time.monotonic())
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    began = time.monotonic()
    with pytest.raises(storage.StorageUnavailable) as err:
        asyncio.run(fs._retrying(down, "put_object"))
    assert 1.0 < time.monotonic() - began <= 2.5 and 3 <= len(calls) <= 4  # 0.5, 1, (2 > budget) s apart
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(0.35 < g < 1.5 for g in gaps) and gaps == sorted(gaps)  # backing off
    line = str(err.value)
    assert line.startswith("cannot reach the storage endpoint (http://127.0.0.1:9): put_object gave up after")
    assert "(limit 2 s, DISENTUNE_STORAGE_RETRY_S; last error EndpointConnectionError)" in line and "\n" not in line
    assert storage.storage_error("s3://bucket/x/trials.parquet", err.value).args[0] == \
        f"s3://bucket/x/trials.parquet: {line}"


def test_a_request_that_recovers_within_the_budget_returns_and_others_fail_at_once():
    fs, calls = _fs(30.0), []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise client_error("SlowDown", 503)
        return "stored"

    assert asyncio.run(fs._retrying(flaky, "put_object")) == "stored" and len(calls) == 3

    async def missing():
        calls.append(1)
        raise client_error("NoSuchBucket", 404)

    calls.clear()
    with pytest.raises(Exception, match="NoSuchBucket"):
        asyncio.run(fs._retrying(missing, "put_object"))
    assert len(calls) == 1


def test_the_budget_comes_from_the_environment_and_travels_with_the_client(monkeypatch):
    monkeypatch.setenv(storage.RETRY_ENV, "7.5")
    fs, _ = storage.filesystem("s3://bucket/x")
    assert fs.retry_s == 7.5
    assert pickle.loads(pickle.dumps(fs)).retry_s == 7.5  # into Ray's trial and worker processes
    arrow, _ = storage.arrow_filesystem("s3://bucket/x")
    assert pickle.loads(pickle.dumps(arrow)).handler.fs.retry_s == 7.5
    monkeypatch.delenv(storage.RETRY_ENV)
    assert storage.retry_budget() == storage.DEFAULT_RETRY_S == 90.0
    for bad in ("soon", "-1"):
        monkeypatch.setenv(storage.RETRY_ENV, bad)
        with pytest.raises(UserError, match=storage.RETRY_ENV):
            storage.retry_budget()


def test_a_full_disk_names_the_path_and_the_space_needed(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "open", full, raising=False)  # storage.py's own open() only
    with pytest.raises(UserError) as err:
        storage.write_bytes(str(tmp_path / "t.parquet"), b"x" * 3000)
    assert str(err.value).startswith(f"{tmp_path}/t.parquet: no space left on the device: 2.9 KiB needed, ")
    assert str(err.value).endswith(" free") and list(tmp_path.iterdir()) == []
    assert storage.is_no_space(OSError("409600 requested and 65408 written"))  # numpy's short write
    assert not storage.is_no_space(OSError(errno.EACCES, "denied"))
