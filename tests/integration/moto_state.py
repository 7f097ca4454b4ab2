"""moto's S3 server on 127.0.0.1 that keeps its buckets across a stop and a start.

    python tests/integration/moto_state.py --port PORT --state DIR

moto keeps its state in memory, and ``moto_server`` has no option to persist it (``--help``
lists host, port, reload and SSL only; its request recorder replays requests, upload ids and all,
rather than restoring state). So this runs moto's own server (``ThreadedMotoServer``, the app
``moto_server`` serves) and, on SIGTERM or SIGINT, stops serving first, lets the requests in flight
finish, then saves every bucket's objects under ``DIR`` before it exits; started again with the
same ``DIR`` it restores them before it listens on ``PORT``. Between the two the port refuses
connections, as an S3 endpoint that is down does. Requests that arrive on an open keep-alive
connection after the stop began are answered 503 (S3's "Service Unavailable"), which clients
retry. A second, private moto server on another port (same process, same state) does the saving
and restoring through boto3, S3's public API.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gate:
    """WSGI middleware: counts requests in flight; once closed, answers 503."""

    def __init__(self, app) -> None:
        self.app, self.closed, self.active = app, False, 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            if self.closed:
                start_response("503 Service Unavailable", [("Content-Type", "application/xml"),
                                                           ("Connection", "close")])
                return [b"<Error><Code>ServiceUnavailable</Code><Message>stopping</Message></Error>"]
            self.active += 1
        try:
            return [b"".join(self.app(environ, start_response))]  # the body, before the count drops
        finally:
            with self.lock:
                self.active -= 1

    def close(self, timeout: float = 30.0) -> None:
        with self.lock:
            self.closed = True
        deadline = time.time() + timeout
        while self.active and time.time() < deadline:
            time.sleep(0.05)


def serve(host: str, port: int, app):
    from werkzeug.serving import make_server

    try:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    except ImportError:  # pragma: no cover - older moto
        server = make_server(host, port, app, threaded=True)
    # server_close() would otherwise join every handler thread, and one parked on a client's idle
    # keep-alive connection (botocore pools them) never ends: stop() then hung past its 120 s
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def client(port: int):
    import boto3

    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="state", aws_secret_access_key="state")


def save(s3, state: Path) -> int:
    """Every object of every bucket into ``state`` (written aside, then renamed into place)."""
    tmp = state.with_name(state.name + ".saving")
    (tmp / "objects").mkdir(parents=True, exist_ok=True)
    index = {"buckets": [], "objects": []}
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        index["buckets"].append(name)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read()
                file = hashlib.sha256(f"{name}/{obj['Key']}".encode()).hexdigest()
                (tmp / "objects" / file).write_bytes(body)
                index["objects"].append([name, obj["Key"], file])
    (tmp / "index.json").write_text(json.dumps(index))
    if state.exists():
        import shutil

        shutil.rmtree(state)
    os.replace(tmp, state)
    return len(index["objects"])


def restore(s3, state: Path) -> int:
    index = json.loads((state / "index.json").read_text())
    for name in index["buckets"]:
        s3.create_bucket(Bucket=name)
    for name, key, file in index["objects"]:
        s3.put_object(Bucket=name, Key=key, Body=(state / "objects" / file).read_bytes())
    return len(index["objects"])


class Moto:
    """This server on 127.0.0.1:port as a child process, seen from a test or bench: its buckets
    survive :meth:`stop` / :meth:`start` (an outage), as a real S3's do."""

    def __init__(self, root: Path) -> None:
        self.port, self.state, self.proc = _free_port(), root / "moto-state", None
        self.log = open(root / "moto.log", "ab")  # noqa: SIM115 - closed in close()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--port", str(self.port), "--state", str(self.state)],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("the moto server did not start")

    def stop(self) -> None:
        """Stop serving (the port then refuses connections), save the buckets, exit."""
        self.proc.terminate()
        self.proc.wait(timeout=120)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    app = DomainDispatcherApplication(create_backend_app)  # what moto_server serves
    private_port = _free_port()
    private = serve("127.0.0.1", private_port, app)
    s3 = client(private_port)
    if (args.state / "index.json").exists():
        print(f"restored {restore(s3, args.state)} objects", file=sys.stderr, flush=True)
    gate = Gate(app)
    public = serve("127.0.0.1", args.port, gate)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"serving on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    stopping.wait()
    public.shutdown()
    public.server_close()  # the port refuses connections from here on
    gate.close()
    print(f"saved {save(s3, args.state)} objects", file=sys.stderr, flush=True)
    private.shutdown()
    os._exit(0)  # drops the keep-alive connections still open


if __name__ == "__main__":
    sys.exit(main())
