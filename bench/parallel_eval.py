"""Parallel evaluation: the Ray-task evaluator against the same jobs run one after the other.

    python bench/parallel_eval.py [RUN] [--trials 8] [--metrics mig,sap,...] [--scaling]

Full runs (quiet 2-core machine): ``python bench/parallel_eval.py`` (8 trials x 8 metrics = 64
tasks, serial then Ray with 2 CPUs, about 4 minutes) and ``python bench/parallel_eval.py
--trials 4 --scaling`` (32 tasks; serial, Ray with 1 CPU, Ray with 2 CPUs, about 4.5 minutes).
Other jobs on the cores spoil a speed-up: the script measures the machine's own ceiling (two
pure-Python loops at once against one after the other) before and after, and prints the load.

For a copy of a finished run (``experiment.json`` and ``trials.parquet`` copied into a fresh
folder under ``--work``, so the run itself is never written; the checkpoints are read where they
are), :func:`disentune.evaluate.plan` lists one job per (trial, metric). The same jobs then run

- **serial**: :func:`disentune.evaluate.run_job` one after the other in this process, pinned to
  the threads a Ray task gets (``evaluation.cpus_per_task`` CPUs: Ray sets ``OMP_NUM_THREADS`` to
  that, so torch, OpenBLAS and OpenMP run with that many threads; here ``torch.set_num_threads``
  and ``threadpoolctl`` set the same count). The evaluator's modules are imported and the feature
  network is loaded once before the clock starts (a Ray worker pays its imports inside the
  Ray timing, which only favours the serial mode);
- **ray**: :func:`disentune.parallel.run_tasks` (what :func:`disentune.evaluate.evaluate_run`
  calls) on a private ``ray.init("local", num_cpus=C)``, one task per job asking for
  ``cpus_per_task`` CPUs. Ray's start-up (``ray.init``) is timed separately; the evaluation wall
  time runs from the first submission to the last result, worker start-up and imports included.

``--scaling`` adds a run with ``num_cpus=1``: the resource model then allows one task at a time,
which shows how the evaluator scales with the CPUs the cluster offers (ideal speed-up
``min(tasks, cpus / cpus_per_task)``).

Every mode writes its own ``evaluations.parquet``; the values must agree exactly (every metric
is seeded from the trial's seed and its name), and the script prints the largest difference
between modes and against the values the run itself stored (for metrics whose parameters this
script did not change).

The default metric set is the run's suite without DCI, precision/recall and attribute control,
at the run's own sizes (``metric_params``). DCI (``--metrics ...,dci``) costs 10-20 s a task
whatever its size (scikit-learn's boosted trees: 100 stages x one tree per factor class), so when
chosen it runs at ``--dci-train`` + ``--dci-train/2`` points (default 200 + 100).
Metrics that need Inception weights run with the dataset-factor network unless the run names
weights (the quickstart does not).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

DEFAULT_METRICS = "mig,sap,modularity,explicitness,factor_vae_score,beta_vae_score,fid,kid"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _spin(n: int) -> float:
    began = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return time.perf_counter() - began


def machine_ceiling(cpus: int, n: int = 15_000_000) -> float:
    """How much faster ``cpus`` pure-Python loops finish at once than one after the other, right
    now: ``cpus x (time alone) / (slowest time together)``. 2.0 on an idle 2-core machine; other
    jobs on the cores lower it, and no evaluator can beat it."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        alone = pool.apply(_spin, (n,))
    with ctx.Pool(cpus) as pool:
        together = max(pool.map(_spin, [n] * cpus))
    return cpus * alone / together


def copy_run(run: Path, dest: Path) -> str:
    """A fresh run folder holding only what the evaluator reads: the experiment and the trials."""
    dest.mkdir(parents=True)
    for name in ("experiment.json", "trials.parquet"):
        shutil.copy2(run / name, dest / name)
    return str(dest)


def make_jobs(run_uri: str, metrics: list[str], trials: int, dci_train: int) -> list:
    from disentune.evaluate import plan

    jobs, skipped = plan(run_uri, metrics)
    assert skipped == 0, "the copy must start without evaluations"
    numbers = sorted({j.trial_number for j in jobs})[:trials]
    jobs = [j for j in jobs if j.trial_number in numbers]
    out = []
    for j in jobs:
        if j.metric == "dci":
            j = dataclasses.replace(j, params={**j.params, "num_train": dci_train, "num_test": dci_train // 2})
        out.append(j)
    # the same order in every mode: trial by trial, as plan() lists them
    return out


def retarget(jobs: list, run_uri: str) -> list:
    from disentune.evaluate import TABLE
    from disentune.storage import join

    return [dataclasses.replace(j, output=join(run_uri, TABLE)) for j in jobs]


def values_of(run_uri: str) -> dict[tuple[str, str], float]:
    from disentune.evaluate import read_evaluations

    t = read_evaluations(run_uri).to_pylist()
    return {(r["trial_id"], r["metric"]): r["value"] for r in t}


def task_seconds(run_uri: str) -> list[float]:
    """Each (trial, metric)'s metric seconds as the task recorded it (one per suite metric)."""
    from disentune.evaluate import read_evaluations

    seen: dict[tuple[str, str], float] = {}
    for r in read_evaluations(run_uri).to_pylist():
        seen[(r["trial_id"], r["suite_metric"])] = r["seconds"]
    return list(seen.values())


def largest_difference(a: dict, b: dict) -> tuple[float, int, int]:
    """(largest |a - b| over common keys, NaN mismatches counted as inf; common keys; keys only in one)."""
    import math

    common = set(a) & set(b)
    worst = 0.0
    for k in common:
        x, y = a[k], b[k]
        if math.isnan(x) and math.isnan(y):
            continue
        d = abs(x - y) if not (math.isnan(x) or math.isnan(y)) else math.inf
        worst = max(worst, d)
    return worst, len(common), len(set(a) ^ set(b))


def run_serial(jobs: list, threads: int) -> tuple[float, list[float]]:
    import torch
    from disentune.evaluate import run_job
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    per_job = []
    with threadpool_limits(limits=threads):
        began = time.perf_counter()
        for job in jobs:
            t = time.perf_counter()
            run_job(job)
            per_job.append(time.perf_counter() - t)
        wall = time.perf_counter() - began
    return wall, per_job


def probe_threads() -> tuple[str | None, int, list]:
    """What a task sees: OMP_NUM_THREADS, torch's intra-op threads, the BLAS/OpenMP pools."""
    import torch
    from threadpoolctl import threadpool_info

    return (os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads(),
            sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()}))


def run_ray(jobs: list, cpus: int, cfg) -> dict:
    import ray
    from disentune.evaluate import run_job
    from disentune.parallel import run_tasks

    began = time.perf_counter()
    ray.init("local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - began
    try:
        load_before = load()
        began = time.perf_counter()
        done, failed = run_tasks(run_job, jobs, num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task,
                                 use_gpu=cfg.use_gpu, address="local")
        wall = time.perf_counter() - began
        load_after = load()
        probe = ray.get(ray.remote(probe_threads).options(num_cpus=cfg.cpus_per_task).remote())
    finally:
        ray.shutdown()
    return {"startup": startup, "wall": wall, "done": len(done), "failed": failed, "probe": probe,
            "load": f"{load_before} -> {load_after}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", default="reports/quickstart", type=Path)
    parser.add_argument("--trials", type=int, default=8, help="first N trials of the run")
    parser.add_argument("--metrics", default=DEFAULT_METRICS)
    parser.add_argument("--dci-train", type=int, default=200, help="DCI train points (test: half)")
    parser.add_argument("--cpus", type=int, default=2, help="num_cpus of the local Ray instance")
    parser.add_argument("--scaling", action="store_true", help="also run Ray with num_cpus=1")
    parser.add_argument("--work", type=Path, default=None, help="folder for the run copies (default: a temp dir)")
    args = parser.parse_args()

    import torch
    from disentune.evaluate import run_config

    # what run_job imports lazily, loaded before any clock starts
    from disentune.metrics import suite  # noqa: F401
    from disentune.metrics.factor_net import EXTRACTOR_SEED, ensure_factor_net
    from disentune.registry import DATASETS
    from disentune.train import checkpoint  # noqa: F401

    run = args.run.resolve()
    dataset, resolution, cfg, run_id = run_config(str(run))
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    threads = max(1, int(cfg.cpus_per_task))
    work = args.work or Path(tempfile.mkdtemp(prefix="parallel_eval-"))
    data = DATASETS.get(dataset)(resolution=resolution)
    data.render()
    ensure_factor_net(data, dataset, resolution, seed=EXTRACTOR_SEED)

    base = make_jobs(copy_run(run, work / "serial"), metrics, args.trials, args.dci_train)
    tasks = len(base)
    print(f"run {run} ({run_id}, {dataset} {resolution} px): {len({j.trial_number for j in base})} trials x "
          f"{len(metrics)} metrics = {tasks} tasks"
          + (f"; dci at {args.dci_train} + {args.dci_train // 2} points" if "dci" in metrics else ""))
    print(f"evaluation.cpus_per_task = {cfg.cpus_per_task}; serial jobs pinned to {threads} thread(s) "
          f"(torch + threadpoolctl); torch {torch.__version__}; os.cpu_count() = {os.cpu_count()}")
    print(f"run copies under {work}; load average (1, 5, 15 min) at start: {load()}", flush=True)
    ceilings = [machine_ceiling(args.cpus)]
    print(f"machine ceiling now: {args.cpus} pure-Python loops at once run {ceilings[0]:.2f}x faster than "
          f"one after the other (ideal {args.cpus:.1f}x)", flush=True)

    rows = []
    # serial
    load_before = load()
    wall, per_job = run_serial(base, threads)
    serial_values = values_of(str(work / "serial"))
    rows.append({"mode": "serial (run_job in process)", "cpus": threads, "wall": wall, "startup": 0.0,
                 "ideal": 1.0, "load": f"{load_before} -> {load()}", "sum": sum(task_seconds(str(work / "serial")))})
    print(f"serial: {wall:.1f} s ({tasks} jobs, run_job median {statistics.median(per_job):.2f} s, "
          f"max {max(per_job):.2f} s; metric seconds {rows[0]['sum']:.1f}, so loading checkpoint, data and "
          f"feature network and writing the part cost {(wall - rows[0]['sum']) / tasks:.2f} s a job)", flush=True)

    results = {}
    for cpus in ([1] if args.scaling else []) + [args.cpus]:
        uri = copy_run(run, work / f"ray{cpus}")
        jobs = retarget(base, uri)
        r = run_ray(jobs, cpus, cfg)
        results[cpus] = (uri, r)
        ideal = min(tasks, cpus / cfg.cpus_per_task)
        rows.append({"mode": f"ray tasks, num_cpus={cpus}", "cpus": cpus, "wall": r["wall"], "startup": r["startup"],
                     "ideal": ideal, "load": r["load"], "sum": sum(task_seconds(uri))})
        print(f"ray num_cpus={cpus}: start-up {r['startup']:.1f} s, evaluation {r['wall']:.1f} s, "
              f"{r['done']} done, {len(r['failed'])} failed; a task sees OMP_NUM_THREADS={r['probe'][0]}, "
              f"torch threads {r['probe'][1]}, pools {r['probe'][2]}", flush=True)
        for job, why in r["failed"]:
            print(f"  FAILED #{job.trial_number} {job.metric}: {why}")

    ceilings.append(machine_ceiling(args.cpus))
    print(f"machine ceiling after the runs: {ceilings[1]:.2f}x")

    print(f"\n{'mode':<28} {'cpus':>4} {'tasks':>5} {'ideal':>6} {'wall s':>7} {'speed-up':>8} "
          f"{'ray init s':>10} {'speed-up incl. init':>19}  load (1/5/15 min) before -> after")
    serial_wall = rows[0]["wall"]
    for r in rows:
        incl = serial_wall / (r["wall"] + r["startup"])
        print(f"{r['mode']:<28} {r['cpus']:>4} {tasks:>5} {r['ideal']:>5.1f}x {r['wall']:>7.1f} "
              f"{serial_wall / r['wall']:>7.2f}x {r['startup']:>10.1f} {incl:>18.2f}x  {r['load']}")
    print("\nmetric seconds summed over tasks (as recorded in evaluations.parquet): "
          + ", ".join(f"{r['mode'].split(',')[-1].strip()}: {r['sum']:.1f}" for r in rows))

    print("\nagreement of metric values (largest |difference|, values compared, values in only one):")
    for cpus, (uri, _) in results.items():
        worst, n, odd = largest_difference(serial_values, values_of(uri))
        print(f"  serial vs ray num_cpus={cpus}: {worst:.3g} over {n} values, {odd} unmatched")
    stored = values_of(str(run))
    changed = {"dci"} if "dci" in metrics else set()
    comparable_ids = {j.trial_id for j in base}
    from disentune.evaluate import read_evaluations

    suite_of = {(r["trial_id"], r["metric"]): r["suite_metric"] for r in read_evaluations(str(run)).to_pylist()}
    stored = {k: v for k, v in stored.items()
              if k[0] in comparable_ids and suite_of.get(k) in metrics and suite_of.get(k) not in changed}
    mine = {k: v for k, v in serial_values.items() if k in stored}
    if stored:
        worst, n, odd = largest_difference(mine, stored)
        print(f"  serial vs the run's own evaluations.parquet (metrics at the run's sizes): "
              f"{worst:.3g} over {n} values")
    print(f"machine ceiling ({args.cpus} CPU-bound processes at once vs one after the other) before / after: "
          f"{ceilings[0]:.2f}x / {ceilings[1]:.2f}x; load average at end: {load()}")


if __name__ == "__main__":
    main()
