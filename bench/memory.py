"""Peak memory of a training trial, of evaluating one trial, and of a tiny sweep; how they grow.

    python bench/memory.py [--steps 100] [--train-sizes 10000,100000] [--resolutions 32,64]
                           [--eval-points 10000,100000] [--no-ray-eval] [--no-sweep]
                           [--no-data | --data-only] [--data-dir DIR] [--shapes3d-hues 10]

The defaults take about 4 minutes on a quiet 2-core machine once the 64 px dataset-factor
network is cached (the first run trains it, outside every measurement).

Every measurement runs in a fresh child process (``python bench/memory.py --child ...``) that
this script watches through ``/proc``: every 0.2 s it walks the child's process tree (Ray's GCS,
raylet and workers included) and sums each process's resident set (``VmRSS``), its anonymous part
(``RssAnon``: heap, tensors, arrays), its file-backed part (``RssFile``: code, libraries and the
memory-mapped dataset cache) and its proportional share (``Pss`` from ``smaps_rollup``, which
counts a page shared by k processes as 1/k in each, so the tree sum does not count shared
libraries or the shared page cache twice). The peak of each sum over the run is reported, and
each process's exact peak RSS (``VmHWM``) is kept too. MiB = 2^20 bytes.

(a) **training**: one trial's loop, the in-process path a one-worker trial runs inside its Tune
trial (:func:`disentune.train.loop.run_training` with a :class:`LocalSession`), beta-TCVAE,
batch 64, one thread (``cpus_per_worker: 1``), one epoch, then the search objectives (MIG on
10,000 and FID on 2,000 images) and a checkpoint, as in a trial. At 64 px and 100,000 images a
full epoch takes minutes on one thread, so ``--steps K`` runs the real optimiser step on the
first K batches only and returns the last loss for the others (the loop still walks every
batch; a step's memory does not depend on how many steps ran). ``--steps 0`` trains in full.
(b) **evaluating one trial** (trial 0 of ``--run``, 32 px): each of mig, sap and fid (``--eval-metrics``)
as :func:`disentune.evaluate.run_job` alone in a process, at two sample counts (``--eval-points``
P: mig and modularity P points, sap P train + P/2 test, fid P/5 real + P/5 generated), then the
same metrics through the Ray-task evaluator (``evaluate_run``, ``num_cpus=2``) on a copy of the run.
(c) **a tiny sweep**: ``disentune sweep`` of 2 trials x 1 epoch x 5,000 images at 32 px,
2 at a time, with the suite (mig, fid) after it, as one process tree. (d) **converting a
published file** and (e) **a worker reading its cache**: bench/memory_data.py (``--data-only``).

The dataset check: a training worker holds its own ``train_size`` images unpacked as uint8
(``R*R`` bytes each) while they take at most 256 MiB, and otherwise decodes each batch from the
memory-mapped, bit-packed cache that all workers share (disentune/train/batches.py); the table
compares the anonymous-memory growth between train sizes with those images' bytes and with the
bytes of the whole dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import memory_data  # noqa: E402
from memory_helpers import load, mapped_rss, measure, mib, status  # noqa: E402

NUM_IMAGES = 737_280


# ---------------------------------------------------------------------------------------------
# children (each runs in its own process)
# ---------------------------------------------------------------------------------------------

class _CappedStep:
    def __init__(self, step, steps: int, marks: dict) -> None:
        self.step, self.steps, self.marks, self.calls, self.last = step, steps, marks, 0, None

    def __call__(self, *args, **kwargs):
        if self.calls == 0:
            self.marks["first_step"] = status()  # images unpacked, model and optimiser built
        self.calls += 1
        if self.steps and self.calls > self.steps and self.last is not None:
            return self.last
        self.last = self.step(*args, **kwargs)
        return self.last

    def __getattr__(self, name):  # state_dict, load_state_dict, ...
        return getattr(self.step, name)


class _CappedVariant:
    def __init__(self, variant, steps: int, marks: dict) -> None:
        self.variant, self.steps, self.marks = variant, steps, marks

    def make_step(self, model, hyper):
        return _CappedStep(self.variant.make_step(model, hyper), self.steps, self.marks)

    def __getattr__(self, name):
        return getattr(self.variant, name)


class _CappedRegistry:
    def __init__(self, registry, steps: int, marks: dict) -> None:
        self.registry, self.steps, self.marks = registry, steps, marks

    def get(self, name):
        return _CappedVariant(self.registry.get(name), self.steps, self.marks)

    def __getattr__(self, name):
        return getattr(self.registry, name)


def child_prepare(resolutions: list[int]) -> dict:
    """Render the datasets and train/cache the factor networks (outside any measurement)."""
    from disentune.data.dsprites import DSprites
    from disentune.metrics.factor_net import ensure_factor_net

    for r in resolutions:
        data = DSprites(resolution=r)
        data.render()
        ensure_factor_net(data, "dsprites", r)
    return {}


def child_train(resolution: int, train_size: int, steps: int) -> dict:
    import torch
    from disentune.config import experiment_from_dict
    from disentune.data.dsprites import DSprites
    from disentune.metrics.factor_net import ensure_factor_net
    from disentune.train import loop
    from disentune.train.session import LocalSession

    marks: dict = {"imports": status()}
    data = DSprites(resolution=resolution)
    extractor = ensure_factor_net(data, "dsprites", resolution)
    exp = experiment_from_dict({
        "name": "memory-bench", "seed": 0,
        "data": {"dataset": "dsprites", "resolution": resolution, "train_size": train_size},
        "train": {"epochs": 1, "cpus_per_worker": 1},
        "evaluation": {"fid_samples": 2000, "mig_samples": 10000},
    })
    params = {"variant": "beta_tcvae", "lambda_mi": 0.5, "lambda_tc": 2.0, "lr": 1e-3, "latent_dim": 10,
              "batch_size": 64, "seed": 0}
    loop.MODELS = _CappedRegistry(loop.MODELS, steps, marks)
    objectives = loop.search_objectives

    def observed_objectives(*a, **k):
        marks["cache_first_step"] = mapped_rss(data.path)
        out = objectives(*a, **k)
        marks["objectives"] = status()
        marks["cache_objectives"] = mapped_rss(data.path)
        return out

    loop.search_objectives = observed_objectives
    began = time.perf_counter()
    session = LocalSession()
    loop.run_training(loop.TrialSpec(experiment=exp, params=params, extractor_path=str(extractor)), session)
    last = session.reports[-1][0]
    marks["end"] = status()
    return {"marks": marks, "seconds": time.perf_counter() - began, "threads": torch.get_num_threads(),
            "images_seen": last["images_seen"], "mig": last["mig"], "fid": last["fid"],
            "cache_bytes": os.path.getsize(data.path)}


def eval_params(points: int) -> dict:
    return {"mig": {"num_points": points}, "modularity": {"num_points": points},
            "sap": {"num_train": points, "num_test": points // 2}, "fid": {"num_points": points // 5}}


def one_trial_copy(run: Path, dest: Path, points: int) -> str:
    """A copy of ``run`` with only its first trial and the metric sizes for ``points``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    dest.mkdir(parents=True)
    trials = pq.read_table(run / "trials.parquet")
    first = min(trials["trial_number"].to_pylist())
    pq.write_table(trials.filter(pc.equal(trials["trial_number"], first)), dest / "trials.parquet")
    stored = json.loads((run / "experiment.json").read_text())
    ev = stored["experiment"]["evaluation"]
    ev["metric_params"] = {**ev.get("metric_params", {}), **eval_params(points)}
    (dest / "experiment.json").write_text(json.dumps(stored))
    return str(dest)


def child_eval_job(run: str, metric: str, points: int) -> dict:
    import torch
    from disentune.evaluate import plan, read_evaluations, run_job
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)  # what a one-CPU Ray task gets (OMP_NUM_THREADS=1)
    marks = {"imports": status()}
    with tempfile.TemporaryDirectory() as tmp:
        uri = one_trial_copy(Path(run), Path(tmp) / "run", points)
        jobs, _ = plan(uri, [metric])
        began = time.perf_counter()
        with threadpool_limits(limits=1):
            run_job(jobs[0])
        seconds = time.perf_counter() - began
        values = {r["metric"]: r["value"] for r in read_evaluations(uri).to_pylist()}
    marks["end"] = status()
    return {"marks": marks, "seconds": seconds, "values": values}


def child_eval_ray(run: str, points: int, metrics: list[str]) -> dict:
    from disentune.evaluate import evaluate_run

    with tempfile.TemporaryDirectory() as tmp:
        uri = one_trial_copy(Path(run), Path(tmp) / "run", points)
        result = evaluate_run(uri, metrics=metrics, num_cpus=2)
    return {"done": len(result.done), "failed": [why for _, why in result.failed], "seconds": result.seconds}


def run_child(args: argparse.Namespace) -> None:
    kind, rest = args.child[0], args.child[1:]
    if kind.startswith("data-"):
        out = memory_data.run_child(kind, rest)
    elif kind == "prepare":
        out = child_prepare([int(r) for r in rest])
    elif kind == "train":
        out = child_train(int(rest[0]), int(rest[1]), int(rest[2]))
    elif kind == "eval-job":
        out = child_eval_job(rest[0], rest[1], int(rest[2]))
    elif kind == "eval-ray":
        out = child_eval_ray(rest[0], int(rest[1]), rest[2].split(","))
    else:
        raise SystemExit(f"unknown child {kind}")
    Path(args.result).write_text(json.dumps(out, default=str))


# ---------------------------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------------------------

def bench_train(resolutions: list[int], sizes: list[int], steps: int) -> list[dict]:
    print("\n(a) one training trial in process (beta_tcvae, batch 64, 1 thread, 1 epoch"
          + (f", optimiser steps capped at {steps}" if steps else "") + ", then MIG 10k + FID 2k)")
    head = (f"{'px':>3} {'train_size':>10} {'images MiB':>10} {'wall s':>6} {'base anon':>9} "
            f"{'loaded anon':>11} {'peak RSS':>8} {'peak anon':>9} {'peak file':>9} {'peak PSS':>8}  load")
    print(head, flush=True)
    rows = []
    for r in resolutions:
        for n in sizes:
            before = load()
            mon, res, wall = measure(["train", str(r), str(n), str(steps)])
            m = res["marks"]
            main = mon.largest("main")
            row = {"px": r, "n": n, "images": n * r * r, "wall": wall, "base": m["imports"]["RssAnon"],
                   "loaded": m["first_step"]["RssAnon"], "hwm": m["end"]["VmHWM"], "anon": main.get("anon", 0),
                   "file": main.get("file", 0), "pss": mon.peak["pss"], "cache": res["cache_bytes"],
                   "loaded_file": m["first_step"]["RssFile"], "base_file": m["imports"]["RssFile"],
                   "cache_step": m["cache_first_step"], "cache_obj": m["cache_objectives"]}
            rows.append(row)
            print(f"{r:>3} {n:>10,} {mib(row['images']):>10} {wall:>6.0f} {mib(row['base']):>9} "
                  f"{mib(row['loaded']):>11} {mib(row['hwm']):>8} {mib(row['anon']):>9} {mib(row['file']):>9} "
                  f"{mib(row['pss']):>8}  {before} -> {load()}", flush=True)
    print("images MiB: train_size x R x R bytes (the uint8 training set); base anon: after imports; "
          "loaded anon: at the first step (images unpacked, model and optimiser built); peak RSS: the "
          "process's VmHWM (exact); peak anon / file: polled RssAnon / RssFile (file = libraries + "
          "mapped dataset cache pages); peak PSS: polled.")
    return rows


def dataset_check(rows: list[dict]) -> None:
    print("\ndataset check: what a training worker holds of the dataset")
    print(f"{'px':>3} {'train_size':>10} {'anon at 1st step':>16} {'own images':>10} {'cache mapped, training':>22} "
          f"{'+ objectives':>12} {'cache file':>10} {'whole set unpacked':>18}")
    for row in rows:
        print(f"{row['px']:>3} {row['n']:>10,} {mib(row['loaded']):>16} {mib(row['images']):>10} "
              f"{mib(row['cache_step']):>22} {mib(row['cache_obj']):>12} {mib(row['cache']):>10} "
              f"{mib(NUM_IMAGES * row['px'] ** 2):>18}")
    by_px: dict[int, list[dict]] = {}
    for row in rows:
        by_px.setdefault(row["px"], []).append(row)
    for px, group in by_px.items():
        if len(group) < 2:
            continue
        lo, hi = min(group, key=lambda g: g["n"]), max(group, key=lambda g: g["n"])
        d_anon, d_images = hi["loaded"] - lo["loaded"], hi["images"] - lo["images"]
        whole = NUM_IMAGES * px * px
        print(f"{px} px, {lo['n']:,} -> {hi['n']:,} images: anonymous memory +{mib(d_anon)} MiB for +{mib(d_images)} "
              f"MiB of training images ({d_anon / d_images:.2f}x); the whole unpacked set would be {mib(whole)} MiB")
    print("MiB. anon at 1st step: the worker's private memory once its images are unpacked and the model "
          "built; own images: train_size x R x R bytes (uint8; kept on the worker up to 256 MiB, larger sets "
          "are decoded per batch from the shared cache); cache mapped: "
          "resident pages of the memory-mapped, bit-packed cache file in this worker (shared page cache, "
          "one copy per machine; the kernel maps up to 64 KiB around each touched row), before and after "
          "the objectives read their MIG / FID images.")


def bench_eval(run: Path, points_list: list[int], metrics: list[str], with_ray: bool) -> None:
    print(f"\n(b) evaluating one trial ({run}, trial 0, 32 px): each metric as run_job alone in a process, 1 thread")
    print(f"{'metric':<11} {'points':>7} {'sizes':<28} {'wall s':>6} {'metric s':>8} {'base anon':>9} "
          f"{'peak RSS':>8} {'peak anon':>9} {'peak file':>9}  load")
    for points in points_list:
        for metric in metrics:
            before = load()
            mon, res, wall = measure(["eval-job", str(run), metric, str(points)])
            main = mon.largest("main")
            sizes = ", ".join(f"{k}={v}" for k, v in eval_params(points)[metric].items())
            print(f"{metric:<11} {points:>7,} {sizes:<28} {wall:>6.0f} {res['seconds']:>8.1f} "
                  f"{mib(res['marks']['imports']['RssAnon']):>9} {mib(res['marks']['end']['VmHWM']):>8} "
                  f"{mib(main.get('anon', 0)):>9} {mib(main.get('file', 0)):>9}  {before} -> {load()}", flush=True)
    print("sizes: mig/modularity draw P images, sap P + P/2, fid P/5 real + P/5 generated; "
          "the images of a representation metric are rendered at once as float32 (4*R*R bytes each).")
    if not with_ray:
        return
    print(f"\n    the same {len(metrics)} metrics of one trial through the Ray-task evaluator "
          f"(evaluate_run, num_cpus=2): the whole process tree")
    print(f"{'points':>7} {'wall s':>6} {'procs':>5} {'tree RSS':>8} {'tree PSS':>8} {'tree anon':>9} "
          f"{'ray system PSS':>14} {'largest worker RSS':>18} {'its anon':>8} {'its file':>8}  load")
    for points in points_list:
        before = load()
        mon, res, wall = measure(["eval-ray", str(run), str(points), ",".join(metrics)])
        w = mon.largest("ray worker")
        roles = mon.role_peaks()
        print(f"{points:>7,} {wall:>6.0f} {mon.peak['procs']:>5} {mib(mon.peak['rss']):>8} {mib(mon.peak['pss']):>8} "
              f"{mib(mon.peak['anon']):>9} {mib(roles.get('ray system', 0)):>14} {mib(w.get('hwm', 0)):>18} "
              f"{mib(w.get('anon', 0)):>8} {mib(w.get('file', 0)):>8}  {before} -> {load()}"
              + (f"  FAILED: {res['failed']}" if res["failed"] else ""), flush=True)
    print("tree RSS sums every process's RSS (shared pages counted once per process); tree PSS shares "
          "them out; ray system PSS: GCS, raylet and agents (sum of each one's polled peak).")


def bench_sweep(work: Path) -> None:
    space = work / "tiny.yaml"
    space.write_text(
        "name: memory-tiny\nseed: 0\n"
        "data: {dataset: dsprites, resolution: 32, train_size: 5000}\n"
        "train: {epochs: 1, workers: 1, cpus_per_worker: 1}\n"
        "evaluation: {fid_samples: 2000, mig_samples: 10000, run_suite: after_sweep, suite: [mig, fid],\n"
        "             metric_params: {fid: {num_points: 2000}}}\n"
        "anomaly: {run: never}\n"
        "search: {sampler: tpe, num_samples: 2, max_concurrent_trials: 2}\n"
        "space: {variant: beta_tcvae, lambda_mi: {uniform: [0.0, 1.0]}, lambda_tc: {uniform: [0.0, 10.0]},\n"
        "        lr: 1.0e-3, latent_dim: 10, batch_size: 64}\n")
    print("\n(c) a tiny sweep (disentune sweep: 2 trials x 1 epoch x 5,000 images, 32 px, 2 at a time, "
          "suite mig + fid after it): the whole process tree")
    before = load()
    mon, _, wall = measure(["-m", "disentune", "sweep", str(space), "--out", str(work / "sweep")])
    w = mon.largest("ray worker")
    roles = mon.role_peaks()
    print(f"{'wall s':>6} {'procs':>5} {'tree RSS':>8} {'tree PSS':>8} {'tree anon':>9} {'driver RSS':>10} "
          f"{'ray system PSS':>14} {'largest worker RSS':>18} {'its anon':>8}  load")
    print(f"{wall:>6.0f} {mon.peak['procs']:>5} {mib(mon.peak['rss']):>8} {mib(mon.peak['pss']):>8} "
          f"{mib(mon.peak['anon']):>9} {mib(mon.largest('main').get('hwm', 0)):>10} "
          f"{mib(roles.get('ray system', 0)):>14} {mib(w.get('hwm', 0)):>18} {mib(w.get('anon', 0)):>8}"
          f"  {before} -> {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, default=Path("reports/quickstart"))
    parser.add_argument("--resolutions", default="32,64")
    parser.add_argument("--train-sizes", default="10000,100000")
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per epoch (0: all)")
    parser.add_argument("--eval-points", default="10000,100000")
    parser.add_argument("--eval-metrics", default="mig,sap,fid")
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--no-ray-eval", action="store_true")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-data", action="store_true", help="skip (d) conversion and (e) cache reading")
    parser.add_argument("--data-only", action="store_true", help="only (d) and (e)")
    parser.add_argument("--data-dir", type=Path, help="scratch folder for the full-size files (default: "
                        "a temporary folder, deleted after; needs about 26 GB free)")
    parser.add_argument("--data-resolutions", default="64,32")
    parser.add_argument("--shapes3d-hues", type=int, default=10, help="floor hues of the Shapes3D file "
                        "(10: the real 480,000 images; K: K/10 of it)")
    parser.add_argument("--no-mpi3d", action="store_true")
    parser.add_argument("--data-batches", type=int, default=300)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    resolutions = [int(r) for r in args.resolutions.split(",")]
    began = time.perf_counter()
    print(f"memory of disentune on {os.cpu_count()} CPUs; load average (1, 5, 15 min) at start: {load()}")
    if args.data_only:
        args.no_train = args.no_eval = args.no_sweep = True
    else:
        measure(["prepare", *map(str, sorted(set(resolutions) | {32}))])
    rows = []
    if not args.no_train:
        rows = bench_train(resolutions, [int(n) for n in args.train_sizes.split(",")], args.steps)
        dataset_check(rows)
    if not args.no_eval:
        bench_eval(args.run.resolve(), [int(p) for p in args.eval_points.split(",")],
                   args.eval_metrics.split(","), not args.no_ray_eval)
    if not args.no_sweep:
        work = Path(tempfile.mkdtemp(prefix="memory-sweep-"))
        try:
            bench_sweep(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if not args.no_data:
        work = args.data_dir or Path(tempfile.mkdtemp(prefix="memory-data-"))
        try:
            memory_data.bench_data(work, [int(r) for r in args.data_resolutions.split(",")],
                                   args.shapes3d_hues, not args.no_mpi3d, args.data_batches)
        finally:
            if args.data_dir is None:
                shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - began:.0f} s; load average at end: {load()}")


if __name__ == "__main__":
    main()
