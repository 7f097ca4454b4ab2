"""The faults bench/soak.py injects, and where: the plan (which fault at which point of
progress), the injection, the cluster of ``--node-kills`` and the S3 server of ``--s3-outage``.

The cluster and the S3 server are the integration tests' own: ``tests/integration/cluster.py``
(``ray start`` nodes on 127.0.0.1, each with its own temp dir and ports, killed by that temp dir,
never with ``ray stop``) and ``tests/integration/moto_state.py`` (moto's S3 server that keeps its
buckets across a stop and a start on the same port).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from soak_helpers import session_pids, trial_workers

ROOT = Path(__file__).resolve().parents[1]
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEKEYFORSOAK001", "AWS_SECRET_ACCESS_KEY": "fake/soak/secret",
             "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Fault:
    kind: str  # "worker", "driver", "node" or "s3"
    at_progress: int
    delay_s: float
    due: float | None = None  # wall time once its progress is reached
    done: str = ""  # what happened: "killed pid ..." / "skipped: ..."
    at_s: float | None = None  # when it was injected, seconds into the soak


# ---------------------------------------------------------------- the cluster and the S3 server

def _import_test_helpers() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


class Nodes:
    """A head of 1 CPU and one worker node of 1 CPU (``ray start`` on 127.0.0.1); :meth:`kill`
    loses the worker node as a preemption would, :meth:`replace` starts a fresh one (in the
    background: ``ray start`` takes seconds)."""

    def __init__(self, env: dict) -> None:
        _import_test_helpers()
        from tests.integration.cluster import Cluster

        self.cluster = Cluster(env)
        self.cluster.start_head(num_cpus=1)
        self.count, self.lock = 0, threading.Lock()
        self.starting: threading.Thread | None = None
        self._add()

    @property
    def env(self) -> dict:
        return self.cluster.env

    @property
    def address(self) -> str:
        return self.cluster.address

    def _add(self) -> None:
        with self.lock:
            self.count += 1
            name = f"n{self.count}"
        self.cluster.add_node(name, num_cpus=1)

    def workers(self) -> list:
        return [n for n in self.cluster.nodes if not n.head and n.pids()]

    def pids(self) -> list[int]:
        return [p for n in self.cluster.nodes for p in n.pids()]

    def kill(self) -> str:
        nodes = self.workers()
        if not nodes:
            return ""
        killed = nodes[-1].kill()
        return f"{nodes[-1].name} ({len(killed)} processes)"

    def replace(self, after_s: float) -> None:
        def start() -> None:
            time.sleep(after_s)
            self._add()

        self.starting = threading.Thread(target=start, daemon=True)
        self.starting.start()

    def settle(self) -> None:
        """Wait for a node still starting."""
        if self.starting is not None:
            self.starting.join()

    def driver_dirs(self) -> list[Path]:
        return list((self.cluster.root / "head").glob("session_*/artifacts/*/tune/driver_artifacts"))

    def shutdown(self) -> None:
        self.settle()
        self.cluster.shutdown()


class S3:
    """moto's S3 server on 127.0.0.1 with a bucket ``soak``; :meth:`outage` stops it and starts
    it again on the same port ``seconds`` later (its buckets kept), in the background."""

    def __init__(self, workdir: Path) -> None:
        _import_test_helpers()
        from tests.integration.moto_state import Moto

        self.server = Moto(workdir)
        self.port, self.endpoint = self.server.port, self.server.endpoint
        self.restarting: threading.Thread | None = None
        self.env = {**FAKE_KEYS, "AWS_ENDPOINT_URL": self.endpoint}
        self.start()
        self.client().create_bucket(Bucket="soak")

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=FAKE_KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_KEYS["AWS_SECRET_ACCESS_KEY"])

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def outage(self, seconds: float) -> None:
        self.stop()

        def back() -> None:
            time.sleep(seconds)
            self.start()

        self.restarting = threading.Thread(target=back, daemon=True)
        self.restarting.start()

    def settle(self) -> None:
        """Wait for a restart still pending."""
        if self.restarting is not None:
            self.restarting.join()

    def download(self, prefix: str, to: Path) -> int:
        """Every object under ``prefix`` of the bucket into ``to`` (the run as it is on S3)."""
        client, n = self.client(), 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="soak", Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                target = to / key.removeprefix(prefix + "/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(client.get_object(Bucket="soak", Key=key)["Body"].read())
                n += 1
        return n

    def close(self) -> None:
        self.settle()
        self.server.close()


@dataclass
class Place:
    """Where the sweep runs and writes: a local folder or S3, a private Ray instance or nodes."""

    workdir: Path
    out: str
    env: dict
    nodes: Nodes | None = None
    s3: S3 | None = None

    def dirs(self) -> list[Path]:
        """Folders of Tune trial folders: the run's own (local) and the drivers' staging ones."""
        found = [] if self.s3 else [Path(self.out) / "tune" / "tune"]
        root = self.nodes.cluster.root / "head" if self.nodes else self.workdir / "ray"
        return found + list(root.glob("session_*/artifacts/*/tune/driver_artifacts"))

    def has_tune_state(self) -> bool:
        if self.s3:
            return bool(self.s3.client().list_objects_v2(Bucket="soak", Prefix="run/tune/", MaxKeys=1).get("KeyCount"))
        return (Path(self.out) / "tune").exists()

    def trials_table(self) -> Path | None:
        if not self.s3:
            return Path(self.out) / "trials.parquet"
        try:
            data = self.s3.client().get_object(Bucket="soak", Key="run/trials.parquet")["Body"].read()
        except Exception:  # noqa: BLE001 - none written
            return None
        (self.workdir / "claimed.parquet").write_bytes(data)
        return self.workdir / "claimed.parquet"

    def victims(self, driver: subprocess.Popen) -> list[int]:
        return trial_workers(self.nodes.pids() if self.nodes else session_pids(driver.pid))


def plan(args: argparse.Namespace, rng: np.random.Generator) -> tuple[list[Fault], list[Fault], list[Fault]]:
    total = args.trials * args.epochs
    workers = [Fault("worker", int(p), float(rng.uniform(0, args.max_delay)))
               for p in sorted(rng.integers(1, total, size=args.worker_kills))]
    # some drivers die while starting Ray or restoring Tune's state (progress 0), the others later
    starting = int(rng.binomial(args.driver_kills, args.startup_share))
    drivers = [Fault("driver", int(p), float(rng.uniform(0, args.max_delay))) for p in
               sorted(rng.choice(np.arange(1, total + 1), size=min(args.driver_kills - starting, total), replace=False))]
    for _ in range(starting):
        drivers.insert(int(rng.integers(0, len(drivers) + 1)), Fault("driver", 0, float(rng.uniform(1.0, args.startup_s))))
    # node kills and the outage in the middle 80 % of the sweep, where trials are running
    others = [Fault("node", int(p), float(rng.uniform(0, args.max_delay)))
              for p in sorted(rng.integers(max(1, total // 10), max(2, total * 9 // 10), size=args.node_kills))]
    if args.s3_outage > 0:
        others.append(Fault("s3", int(rng.integers(max(1, total // 5), max(2, total * 4 // 5))),
                            float(rng.uniform(0, args.max_delay))))
    return workers, drivers, sorted(others, key=lambda f: f.at_progress)


def inject(fault: Fault, place: Place, driver: subprocess.Popen, rng: np.random.Generator, args, now: float,
           done: int, started: float) -> bool:
    """Inject a due worker, node or S3 fault; False to try again later (nothing to hit yet)."""
    if fault.kind == "worker":
        victims = place.victims(driver)
        if not victims:
            if now - fault.due > 60:
                fault.done = "skipped: no trial process ran for 60 s"
                return True
            return False
        victim = int(rng.choice(victims))
        try:
            os.kill(victim, signal.SIGKILL)
            fault.done = f"killed trial process {victim} at progress {done}"
        except OSError as err:
            fault.done = f"skipped: {err}"
    elif fault.kind == "node":
        if place.nodes.starting is not None and place.nodes.starting.is_alive():
            return False  # the last node lost is still being replaced
        what = place.nodes.kill()
        if not what:
            return False
        place.nodes.replace(args.node_restart_s)
        fault.done = f"lost node {what} at progress {done}; a fresh one {args.node_restart_s:g} s later"
    else:
        place.s3.outage(args.s3_outage)
        fault.done = f"S3 stopped at progress {done}, started again {args.s3_outage:g} s later"
    fault.at_s = now - started
    return True
