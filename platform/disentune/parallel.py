"""Run a plain function over jobs as Ray tasks: the evaluators' one way into Ray.

:func:`run_tasks` joins the Ray instance already running in this process (the sweep's), or starts
a private local one (``address="local"``) or joins a cluster, submits one task per job with the
given resources, and returns which jobs finished and why the others failed. One failed job never
stops the others; each task writes its own results, so nothing finished is lost if this process
is interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from typing import Any, Callable, Iterator, Sequence, TypeVar

J = TypeVar("J")


def failure_reason(error: BaseException) -> str:
    """One line saying why a task failed, from the innermost error Ray wrapped."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    for marker in ("TrainingDiverged", "Error:", "Exception:"):
        hits = [ln for ln in lines if marker in ln and not ln.startswith("File ")]
        if hits:
            return hits[-1][:500]
    return (lines[-1] if lines else type(error).__name__)[:500]


def with_threads(fn: Callable[[J], Any], threads: int) -> Callable[[J], Any]:
    """``fn`` that first sets torch's intra-op threads to ``threads``: Ray reuses a worker
    process for tasks of different sizes, and torch reads ``OMP_NUM_THREADS`` only once, so a
    1-CPU task would otherwise keep the threads of the 4-CPU task before it (or the reverse)."""

    @functools.wraps(fn)
    def call(job: J) -> Any:
        import torch

        torch.set_num_threads(threads)
        return fn(job)

    return call


@contextlib.contextmanager
def ray_session(address: str = "local", num_cpus: int | None = None) -> Iterator[None]:
    """Use the Ray instance already running in this process, or start one for the block:
    ``"local"`` starts a private instance (never a stray cluster's address), anything else joins
    that cluster (``"auto"``: the one this machine belongs to)."""
    import ray

    started = not ray.is_initialized()
    if started:
        if address == "local":
            ray.init("local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)
        else:
            ray.init(address)
    try:
        if started:
            check_job_nodes()
        yield
    finally:
        if started:
            ray.shutdown()


def _check_node(expected_tree: str, requirements: list[str], where: str) -> str | None:
    from disentune.errors import UserError
    from disentune.provenance import check_here

    try:
        check_here(expected_tree, requirements, where)
    except UserError as err:
        return str(err)
    return None


def check_job_nodes() -> None:
    """In a submitted job: one zero-CPU task on every alive node checks that it runs the
    submitted code and has the submitted code's dependencies; the first problem is one line.
    (Nodes the autoscaler adds later are not checked here; their tasks record their own code
    version in every table they write.)"""
    from pathlib import Path

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from disentune.errors import UserError
    from disentune.provenance import project_requirements, stated_tree

    expected = stated_tree()
    if expected is None:
        return
    requirements = project_requirements(Path.cwd())
    check = ray.remote(num_cpus=0, max_retries=0)(_check_node)
    refs = [check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(expected, requirements, f"node {node['NodeManagerAddress']}")
            for node in ray.nodes() if node.get("Alive")]
    problems = [p for p in ray.get(refs) if p]
    if problems:
        raise UserError(problems[0])


def run_tasks(fn: Callable[[J], Any], jobs: Sequence[J], *, num_cpus: float, num_gpus: float = 0.0,
              use_gpu: bool | str = "auto", address: str = "local", local_cpus: int | None = None,
              describe: Callable[[J], str] | None = None) -> tuple[list[J], list[tuple[J, str]]]:
    """Run ``fn(job)`` for every job as a Ray task; returns ``(done, [(job, reason), ...])``.

    Each task asks for ``num_cpus`` CPUs and, when ``use_gpu`` (``"auto"``: when the cluster has
    GPUs), ``num_gpus`` GPUs (a fraction packs several tasks onto one GPU). With ``describe``,
    each finished job prints one progress line on stderr.
    """
    import ray

    if not jobs:
        return [], []
    with ray_session(address, local_cpus):
        if use_gpu == "auto":
            use_gpu = ray.cluster_resources().get("GPU", 0) > 0
        num_gpus = num_gpus if use_gpu else 0
        task = ray.remote(with_threads(fn, max(1, int(num_cpus)))).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=1, retry_exceptions=False)
        pending = {task.remote(job): job for job in jobs}
        done: list[J] = []
        failed: list[tuple[J, str]] = []
        began = time.perf_counter()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                ray.get(ready[0])
                done.append(job)
                state = "done"
            except Exception as err:  # noqa: BLE001 - reported per job, never raised
                failed.append((job, failure_reason(err)))
                state = "FAILED"
            if describe is not None:
                print(f"[{len(done) + len(failed)}/{len(jobs)} {time.perf_counter() - began:.0f} s] "
                      f"{describe(job)}: {state}", file=sys.stderr, flush=True)
        return done, failed
