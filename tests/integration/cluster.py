"""A multi-node Ray cluster on this machine for fault tests: ``ray start`` nodes on 127.0.0.1,
each with its own ``--temp-dir`` and ports, found (and killed) by that temp dir.

Nothing here runs ``ray stop``: it would stop every Ray process on the machine, other people's
too. A node is stopped the way a preempted machine loses it: SIGKILL of its raylet and of every
process it started (the workers, agents, log monitor), found through ``/proc``: the processes
whose command line names the node's temp dir, and their descendants.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .loopback import free_port

RAY = str(Path(sys.executable).with_name("ray"))

# the head's GCS declares a node dead ~8-10 s after its raylet stops answering (default ~30 s);
# tighter (3 s) also declared live nodes dead, the head's own included, on a busy 2-core machine
FAST_FAILURE_DETECTION = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "2000",
    "RAY_health_check_failure_threshold": "8",
}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if fields[0] not in ("Z", "X") else None


def processes_of(temp: Path) -> list[int]:
    """Live processes whose command line names ``temp``, and all their descendants."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    parents = {p: _parent(p) for p in pids}
    roots = {p for p in pids if str(temp) in _cmdline(p) and parents.get(p) is not None}
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for p, parent in parents.items():
            if p not in found and parent in found:
                found.add(p)
                grew = True
    return sorted(found - {os.getpid()})


def kill_processes(pids: list[int], timeout: float = 30.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline and any(_parent(p) is not None for p in pids):
        time.sleep(0.1)


@dataclass
class Node:
    name: str
    temp: Path
    env: dict
    head: bool = False
    address: str = ""  # host:port of the GCS (the head's)
    resources: dict = field(default_factory=dict)

    def pids(self) -> list[int]:
        return processes_of(self.temp)

    def kill(self) -> list[int]:
        """As a preemption would: SIGKILL the node's raylet and everything it started."""
        pids = self.pids()
        kill_processes(pids)
        return pids


def node_ports() -> list[str]:
    """Free ports for every listener of a node but the GCS and dashboard: the defaults (52365 for
    the dashboard agent, ...) collide with any other Ray instance on the machine."""
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]


def _start(args: list[str], env: dict) -> None:
    proc = subprocess.run([RAY, "start", *args], env=env, capture_output=True, text=True, timeout=240, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")


class Cluster:
    """Nodes started with ``ray start`` on 127.0.0.1; :meth:`shutdown` kills them all."""

    def __init__(self, env: dict | None = None) -> None:
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        # the same auth mode for every node and every driver of the cluster (token: ~/.ray/auth_token)
        # raylet_start_wait_time_s: on a busy 2-core machine a raylet registers in more than the 30 s default
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_raylet_start_wait_time_s": "120", **(env or {}),
                    "RAY_USAGE_STATS_ENABLED": "0", "PATH": path}
        self.root = Path(tempfile.mkdtemp(prefix="dtc", dir="/tmp"))  # short: Ray's socket paths
        self.nodes: list[Node] = []
        self.address = ""

    def start_head(self, *, num_cpus: int = 1, resources: dict | None = None, labels: str = "") -> Node:
        temp = self.root / "head"
        port = free_port()
        env = {**self.env, **FAST_FAILURE_DETECTION}
        _start(["--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={num_cpus}",
                f"--ray-client-server-port={free_port()}", "--include-dashboard=false",
                "--disable-usage-stats", f"--temp-dir={temp}", *node_ports(), f"--object-store-memory={200 * 2**20}",
                *([f"--resources={json.dumps(resources)}"] if resources else []),
                *([f"--labels={labels}"] if labels else [])], env)
        self.address = f"127.0.0.1:{port}"
        node = Node("head", temp, env, head=True, address=self.address, resources=resources or {})
        self.nodes.append(node)
        return node

    def add_node(self, name: str, *, num_cpus: int = 1, resources: dict | None = None, labels: str = "",
                 memory: int | None = None) -> Node:
        """A worker node; ``memory``: its Ray ``memory`` resource (0: none to offer, so nothing
        that asks for memory, such as Tune's trial processes, is placed there)."""
        temp = self.root / name
        _start([f"--address={self.address}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}",
                "--disable-usage-stats", f"--temp-dir={temp}", *node_ports(), f"--object-store-memory={100 * 2**20}",
                *([f"--memory={memory}"] if memory is not None else []),
                *([f"--resources={json.dumps(resources)}"] if resources else []),
                *([f"--labels={labels}"] if labels else [])], self.env)
        node = Node(name, temp, self.env, address=self.address, resources=resources or {})
        self.nodes.append(node)
        return node

    def alive_nodes(self) -> list[dict]:
        """``ray.nodes()`` as the head's GCS sees them, asked from a short-lived process."""
        code = (f"import json, ray; ray.init(address={self.address!r}, log_to_driver=False); "
                "print(json.dumps([{'alive': n['Alive'], 'resources': n['Resources']} for n in ray.nodes()]))")
        proc = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
        return [n for n in json.loads(lines[-1]) if n["alive"]] if lines else []

    def shutdown(self) -> None:
        """Kill every node's processes (workers first, the head last) and remove the temp dirs."""
        for node in reversed(self.nodes):
            node.kill()
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)
