"""Worker processes with hard deadlines, for bench/gpu_check.py.

Every measurement of the GPU check runs in a worker process that talks to the driver over its
own pipe (a killed worker breaks only its own pipe, never a shared queue). Workers are forked by
a fork server that imported the measurements (torch, the platform) once and never touches the
GPU, so a worker starts in milliseconds with everything imported and initialises CUDA itself.
A worker runs the jobs it is sent one after the other, so a worker that finished one step's job
serves the next. A step takes a :class:`Group` of workers from the :class:`Fleet`; when its time
is up, :meth:`Group.close` returns the workers that stop when asked and kills the rest. A worker
is its own process group, so a kill also ends what it started (inductor's compile helpers,
ptxas); one whose driver has gone exits by itself within a second.

Messages are ``(kind, payload)`` tuples. A job that raises sends ``("error", traceback)``; every
job ends with ``("idle", None)``; a worker that dies is seen as ``("dead", exit code)``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

CONTEXTS = {"forkserver": mp.get_context("forkserver"), "spawn": mp.get_context("spawn")}
CONTEXTS["forkserver"].set_forkserver_preload(["gpu_check_workers"])  # imported once, in the server


class Stopped(Exception):
    """Raised in a job that the driver told to stop."""


def _orphan_watch(driver: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(driver, 0)
        except ProcessLookupError:
            os._exit(3)


def _worker(conn: Connection, driver: int) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    threading.Thread(target=_orphan_watch, args=(driver,), daemon=True).start()
    try:
        import gpu_check_workers

        while True:
            kind, job = conn.recv()
            if kind == "exit":
                return
            if kind != "job":
                continue  # a "stop" meant for a job that had ended
            try:
                getattr(gpu_check_workers, job["target"])(conn, job)
            except Stopped:
                pass
            except Exception:  # noqa: BLE001 (reported to the driver, which makes it a row)
                conn.send(("error", traceback.format_exc(limit=6)))
            gpu_check_workers.clean_up()
            conn.send(("idle", None))
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    except BaseException:  # noqa: BLE001 (an import that failed, say)
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", traceback.format_exc(limit=6)))
    finally:
        conn.close()


class Worker:
    def __init__(self, method: str) -> None:
        ctx = CONTEXTS[method]
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(theirs, os.getpid()), daemon=False)
        self.proc.start()
        theirs.close()

    def kill(self) -> None:
        if self.proc.is_alive() and self.proc.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.conn.close()
        self.proc.join(timeout=2.0)


class Fleet:
    """Idle workers for the steps to take. The fork server starts with the first ``spawn``, in
    the environment of that moment plus ``env`` (its workers inherit it). ``method="spawn"``
    starts every worker afresh instead (each imports everything: seconds more)."""

    def __init__(self, env: dict[str, str] | None = None, method: str = "forkserver") -> None:
        self.env, self.method = env or {}, method
        self.idle: list[Worker] = []
        self.all: list[Worker] = []

    def spawn(self, n: int) -> None:
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            for _ in range(n):
                worker = Worker(self.method)
                self.idle.append(worker)
                self.all.append(worker)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def group(self, n: int) -> "Group":
        self.spawn(max(0, n - len(self.idle)))
        taken, self.idle = self.idle[:n], self.idle[n:]
        return Group(taken, self)

    def close(self) -> None:
        for worker in self.all:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("exit", None))
        end = time.time() + 1.0
        for worker in self.all:
            worker.proc.join(timeout=max(0.0, end - time.time()))
        for worker in self.all:
            worker.kill()


class Group:
    """The workers of one step: ``start`` gives worker ``i`` its job, ``recv`` waits for the
    next message of any of them until a deadline."""

    def __init__(self, workers: list[Worker], fleet: Fleet) -> None:
        self.workers, self.fleet = workers, fleet
        self.live = [True] * len(workers)
        self.idle = [True] * len(workers)

    @property
    def alive(self) -> list[int]:
        return [i for i, ok in enumerate(self.live) if ok]

    @property
    def busy(self) -> list[int]:
        """Workers still running their job."""
        return [i for i in self.alive if not self.idle[i]]

    def start(self, target: str, jobs: list[dict]) -> None:
        if len(jobs) > len(self.workers):
            raise ValueError(f"{len(jobs)} jobs for {len(self.workers)} workers")
        for i, job in enumerate(jobs):
            self.idle[i] = False
            self.send(i, "job", {**job, "target": target})
        for i in range(len(jobs), len(self.workers)):
            self.live[i] = False  # not used: straight back to the fleet
            self.fleet.idle.append(self.workers[i])

    def recv(self, until: float) -> tuple[int, str, Any] | None:
        """The next message (``idle`` ones included) of a worker with a job, or None when ``until``
        (time.time()) passes first or none is left."""
        while True:
            live = {self.workers[i].conn: i for i in self.busy}
            left = until - time.time()
            if not live or left <= 0:
                return None
            for conn in wait(list(live), timeout=left):
                i = live[conn]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    self.live[i] = False
                    self.workers[i].proc.join(timeout=1.0)
                    return i, "dead", self.workers[i].proc.exitcode
                if kind == "idle":
                    self.idle[i] = True
                return i, kind, payload

    def send(self, i: int, kind: str, payload: Any = None) -> bool:
        try:
            self.workers[i].conn.send((kind, payload))
        except (OSError, ValueError):
            self.live[i] = False
            return False
        return True

    def close(self, grace: float = 1.0, replace: bool = True) -> None:
        """Tell every busy worker to stop; those idle within ``grace`` seconds go back to the
        fleet, the rest are killed (and, with ``replace``, replaced by fresh ones at once)."""
        for i in self.busy:
            self.send(i, "stop")
        end = time.time() + grace
        while self.busy and self.recv(end) is not None:
            pass  # late rows are dropped
        for i, worker in enumerate(self.workers):
            if worker in self.fleet.idle:
                continue  # given no job: returned by start()
            if self.live[i] and self.idle[i]:
                self.fleet.idle.append(worker)
            else:
                worker.kill()
                if replace:
                    self.fleet.spawn(1)
        self.live = [False] * len(self.workers)
