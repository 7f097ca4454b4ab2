"""What bench/memory.py measures with: /proc sampling of a process tree, and children run under it.

Every 0.2 s :class:`Monitor` walks a child's process tree (Ray's GCS, raylet and workers
included) and sums each process's resident set (``VmRSS``), its anonymous part (``RssAnon``: heap,
tensors, arrays), its file-backed part (``RssFile``: code, libraries and memory-mapped files) and
its proportional share (``Pss`` from ``smaps_rollup``); the peak of each sum is kept, and each
process's exact peak RSS (``VmHWM``). MiB = 2^20 bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MEMORY_SCRIPT = str(Path(__file__).with_name("memory.py"))
MiB = 2**20
KEYS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")


# ---------------------------------------------------------------------------------------------
# /proc sampling
# ---------------------------------------------------------------------------------------------

def status(pid: int | str = "self") -> dict[str, int]:
    """The memory lines of ``/proc/<pid>/status`` in bytes (missing ones as 0)."""
    out = dict.fromkeys(KEYS, 0)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in out:
                out[key] = int(rest.split()[0]) * 1024
    return out


def mapped_rss(path: str | Path, pid: int | str = "self") -> int:
    """Bytes of ``path``'s memory mappings resident in ``pid`` (its ``Rss`` lines in ``smaps``)."""
    total, inside, target = 0, False, str(path)
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(" ", 1)[0]
            if "-" in first and all(c in "0123456789abcdef-" for c in first):
                inside = line.rstrip("\n").endswith(target)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


def pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree(root: int) -> list[int]:
    """``root`` and all its descendants, from the parent pids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def role(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "?"
    first = argv[0].decode(errors="replace")
    if first.startswith("ray::"):
        return "ray worker"
    line = b" ".join(argv).decode(errors="replace")
    if "default_worker.py" in line:
        return "ray worker"
    if any(s in line for s in ("gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py",
                               "runtime_env", "ray/_private", "ray_client_server")):
        return "ray system"
    return "other"


class Monitor(threading.Thread):
    """Samples the process tree of ``root`` every ``interval`` s; keeps the peaks of the sums."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop_flag = threading.Event()
        self.peak = {"rss": 0, "anon": 0, "file": 0, "shmem": 0, "pss": 0, "procs": 0}
        self.per_pid: dict[int, dict] = {}

    def sample(self) -> None:
        sums = dict.fromkeys(self.peak, 0)
        for pid in tree(self.root):
            try:
                s = status(pid)
            except (OSError, ValueError):
                continue
            p = pss(pid)
            sums["rss"] += s["VmRSS"]
            sums["anon"] += s["RssAnon"]
            sums["file"] += s["RssFile"]
            sums["shmem"] += s["RssShmem"]
            sums["pss"] += p
            sums["procs"] += 1
            mine = self.per_pid.setdefault(pid, {"role": role(pid, self.root), "hwm": 0, "anon": 0,
                                                 "file": 0, "pss": 0})
            mine["hwm"] = max(mine["hwm"], s["VmHWM"], s["VmRSS"])
            mine["anon"] = max(mine["anon"], s["RssAnon"])
            mine["file"] = max(mine["file"], s["RssFile"])
            mine["pss"] = max(mine["pss"], p)
        for k, v in sums.items():
            self.peak[k] = max(self.peak[k], v)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            self.sample()
            time.sleep(self.interval)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join()

    def largest(self, which: str) -> dict:
        """The process of role ``which`` with the largest anonymous peak (empty if none)."""
        hits = [v for v in self.per_pid.values() if v["role"] == which]
        return max(hits, key=lambda v: v["anon"]) if hits else {}

    def role_peaks(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.per_pid.values():
            out[v["role"]] = out.get(v["role"], 0) + v["pss"]
        return out


def measure(child_args: list[str], env: dict | None = None) -> tuple[Monitor, dict, float]:
    """Run ``bench/memory.py --child ...`` (or any argv starting with "-m") under a Monitor."""
    fd, result_path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    if child_args[0] == "-m":
        argv = [sys.executable, *child_args]
    else:
        argv = [sys.executable, MEMORY_SCRIPT, "--child", *child_args, "--result", result_path]
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    mon = Monitor(proc.pid)
    mon.start()
    output = proc.communicate()[0]
    mon.stop()
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"child {' '.join(child_args)} failed ({proc.returncode}):\n{output[-3000:]}")
    try:
        result = json.loads(Path(result_path).read_text() or "{}")
    finally:
        os.unlink(result_path)
    return mon, result, wall


def mib(b: float) -> str:
    return f"{b / MiB:.0f}"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
