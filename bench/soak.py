"""Soak test: a sweep of many tiny trials while trial workers, the driver, whole nodes and S3 fail.

    python bench/soak.py [--trials 16] [--epochs 3] [--worker-kills 8] [--driver-kills 3]
                         [--node-kills 0] [--node-restart-s 10] [--s3-outage 0] [--seed 0]
                         [--signal KILL] [--workdir DIR] [--keep]

Writes a tiny search space (beta-TCVAE, 32 px, ``--train-size`` images, 2 trials at a time, one
worker each, the metric suite off), runs ``python -m disentune sweep`` as a subprocess in its own
session and, with a seeded RNG, injects faults as the sweep progresses (progress = epochs reported
so far, read from Tune's ``result.json`` files):

- worker kills: SIGKILL of a random running trial process (``ray::ImplicitFunc``); Tune restarts
  the trial from its last checkpoint (``train.max_failures`` is set above the number of kills);
- driver kills: ``--signal`` (default SIGKILL) to the driver's process group (the driver and, on
  a local run, the Ray instance it started; any process of its session still alive 15 s later is
  killed and counted as leaked), then ``disentune sweep --resume``; repeated until a run finishes;
- node kills (``--node-kills N``): the sweep runs on a cluster on this machine instead of a
  private Ray instance: a head and one worker node of 1 CPU each (``ray start`` on 127.0.0.1, each
  with its own temp dir and ports; ``--address``), so each runs one trial. A node kill loses the
  worker node as a preemption would (SIGKILL of its raylet and of every process it started, found
  by its temp dir); a fresh node joins ``--node-restart-s`` later. Tune restarts the trial that
  ran there from its last checkpoint, on the head or the new node;
- an S3 outage (``--s3-outage S``): the run goes to ``s3://soak/run`` on moto's S3 server on
  127.0.0.1, which is stopped once at a random point and started again on the same port S
  seconds later, its buckets kept (tests/integration/moto_state.py). Uploads of checkpoints, Tune's
  syncs and table writes wait it out (disentune/storage.py retries S3 requests with backoff for
  ``DISENTUNE_STORAGE_RETRY_S``, default 90 s). A driver is never started while S3 is down.

Afterwards it checks the run folder (for a run on S3, a copy of the prefix downloaded after the
sweep): every trial number 0..N-1 in ``trials.parquet`` exactly once, ok with finite fid and mig,
all epochs and images, one curve row per (trial, epoch, metric), its final checkpoint loads; every
Parquet file, ``experiment.json``, every checkpoint under ``tune/`` and the figures read back; no
``.part`` / ``.tmp`` leftovers; ``index.html`` counts N trials; the Optuna journal holds N complete
trials and none still RUNNING (one handed to a killed driver and never run is marked FAIL), and
the report's cross-check of the front with Optuna's ``best_trials`` says "agrees". With
``--signal INT``/``TERM`` a driver that exits 0 although trials were unfinished, having written
``trials.parquet``, counts as a false finish. It prints one row per trial and the totals (faults
injected, trials re-run, lost, duplicated, failed, corrupt, wall time) and exits with status 1 if
anything was lost, duplicated, failed, corrupt or misnumbered, a driver finished falsely, or the
sweep never finished.

Ray's session files go to ``WORKDIR/ray`` (``RAY_TMPDIR``) or the cluster's own temp dirs, so
nothing here touches another Ray instance on the machine (and nothing runs ``ray stop``). Rendered
data come from ``$DISENTUNE_CACHE`` as usual (point it at a lasting folder to render once).
The faults and where they go live in bench/soak_faults.py, the checks in bench/soak_helpers.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_faults import S3, Fault, Nodes, Place, inject, plan
from soak_helpers import false_finish, progress, reap_session, table, unfinished, verify

POLL_S = 0.25


def space_yaml(args: argparse.Namespace) -> str:
    import yaml

    return yaml.safe_dump({
        "name": "soak", "seed": args.seed,
        "data": {"resolution": 32, "train_size": args.train_size},
        "train": {"epochs": args.epochs, "launcher": "in_trial",
                  "max_failures": min(100, args.worker_kills + args.node_kills + 2)},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"},
        "anomaly": {"run": "never"},
        "search": {"num_samples": args.trials, "max_concurrent_trials": 2, "sampler": "tpe"},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    }, sort_keys=False)


@dataclass
class Attempt:
    resume: bool
    began: float
    seconds: float = 0.0
    end: str = ""  # "finished", "killed", "failed rc=...", "stalled"
    progress_at_end: int = 0
    rc: int | None = None  # the driver's exit status (negative: killed by that signal)
    leaked: int = 0
    interrupted: set[str] = field(default_factory=set)  # trial folders caught mid-way by a kill
    claimed: str | None = None  # what a signalled driver that exited 0 wrote (see false_finish)


def run_under_faults(args: argparse.Namespace, space: Path, place: Place, rng: np.random.Generator,
                     log) -> tuple[list[Attempt], list[Fault]]:
    total = args.trials * args.epochs
    workers, drivers, others = plan(args, rng)
    pending, pending_d = workers + others, list(drivers)
    attempts: list[Attempt] = []
    started = time.time()
    failures_in_a_row = 0
    while True:
        for waiting in (place.s3, place.nodes):  # never start a driver while S3 or a node is coming back
            if waiting is not None:
                waiting.settle()
        resume = place.has_tune_state()
        cmd = [sys.executable, "-m", "disentune", "sweep", str(space), "--out", place.out]
        cmd += ["--address", place.nodes.address] if place.nodes else []
        cmd += ["--resume"] if resume else []
        log.write(f"\n==== attempt {len(attempts) + 1}: {' '.join(cmd)}\n")
        log.flush()
        driver = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=place.env, start_new_session=True)
        attempt = Attempt(resume, time.time())
        attempts.append(attempt)
        kill = pending_d[0] if pending_d else None
        for fault in pending:  # carried over from a killed driver: re-armed in this one
            fault.due = None
        last_progress, last_change = -1, time.time()
        while driver.poll() is None:
            time.sleep(POLL_S)
            now = time.time()
            done = progress(place.dirs())
            if done != last_progress:
                last_progress, last_change = done, now
            for fault in ([kill] if kill else []) + pending:
                if fault.due is None and done >= fault.at_progress:
                    fault.due = now + fault.delay_s
            for fault in [f for f in pending if f.due is not None and now >= f.due]:
                if inject(fault, place, driver, rng, args, now, done, started):
                    pending.remove(fault)
                    if fault.kind == "s3":
                        last_change = time.time() + args.s3_outage  # no progress while S3 is down
            if kill is not None and kill.due is not None and now >= kill.due:
                os.killpg(driver.pid, getattr(signal, f"SIG{args.signal}"))
                try:
                    driver.wait(timeout=5 if args.signal == "KILL" else 120)
                except subprocess.TimeoutExpired:
                    os.killpg(driver.pid, signal.SIGKILL)
                    driver.wait()
                kill.done = f"SIG{args.signal} at progress {done}, {now - attempt.began:.0f} s into the attempt"
                kill.at_s = now - started
                pending_d.remove(kill)
                attempt.end = "killed" if driver.returncode != 0 else "signalled, yet exited 0"
                break
            if now - last_change > args.stall_s:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
                attempt.end = f"stalled: no progress for {args.stall_s:.0f} s"
                break
            if now - started > args.timeout_s:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
                attempt.end = f"timeout: {args.timeout_s:.0f} s in all"
                break
        rc = attempt.rc = driver.wait()
        attempt.seconds = time.time() - attempt.began
        attempt.progress_at_end = progress(place.dirs())
        if attempt.end:  # the driver was killed: these trials continue on --resume
            attempt.interrupted = unfinished(place.dirs(), args.epochs)
        if attempt.end.startswith("signalled") and attempt.progress_at_end < total:
            claimed = place.trials_table()
            attempt.claimed = claimed and false_finish(claimed, args.trials)
        attempt.leaked = reap_session(driver.pid, grace_s=15.0 if attempt.end else 5.0)
        if not attempt.end:
            attempt.end = "finished" if rc == 0 else f"failed rc={rc}"
        log.write(f"==== attempt {len(attempts)}: {attempt.end}, leaked {attempt.leaked} processes\n")
        log.flush()
        if attempt.end == "finished":
            break
        if attempt.end.startswith(("timeout", "stalled")):
            break
        failures_in_a_row = failures_in_a_row + 1 if attempt.end.startswith("failed") else 0
        if failures_in_a_row >= 3:
            break
    for fault in pending + pending_d:
        fault.done = fault.done or "not injected: the sweep finished first"
    return attempts, sorted(workers + drivers + others, key=lambda f: (f.at_s is None, f.at_s or 0))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=1536, help="images per epoch (a multiple of 32)")
    parser.add_argument("--worker-kills", type=int, default=8)
    parser.add_argument("--driver-kills", type=int, default=3)
    parser.add_argument("--node-kills", type=int, default=0,
                        help="run on a 2-node cluster on this machine and lose its worker node N times")
    parser.add_argument("--node-restart-s", type=float, default=10.0, help="a fresh node joins this long after a loss")
    parser.add_argument("--s3-outage", type=float, default=0.0, metavar="S",
                        help="write the run to moto's S3 server and stop it once for S seconds")
    parser.add_argument("--signal", default="KILL", choices=("KILL", "TERM", "INT"),
                        help="what the driver's process group gets (default: SIGKILL, a lost driver)")
    parser.add_argument("--max-delay", type=float, default=3.0,
                        help="each fault waits a random 0..MAX_DELAY s after its point of progress")
    parser.add_argument("--startup-share", type=float, default=0.25,
                        help="chance that a driver kill comes 1..STARTUP_S s after its driver starts "
                             "(progress 0: while it starts Ray or restores Tune's state) instead")
    parser.add_argument("--startup-s", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stall-s", type=float, default=300.0, help="give up on an attempt without progress")
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--workdir", type=Path, help="default: a new folder under /tmp, removed afterwards "
                        "unless --keep or something failed")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (run, log, Ray sessions)")
    args = parser.parse_args()
    if args.train_size % 32 or args.train_size < 32:
        parser.error("--train-size must be a positive multiple of 32 (the batch size)")
    if args.s3_outage < 0 or args.node_kills < 0:
        parser.error("--s3-outage and --node-kills must not be negative")
    return args


def main() -> int:
    args = arguments()
    began = time.time()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="soak-"))  # short: Ray's socket paths
    workdir.mkdir(parents=True, exist_ok=True)
    space = workdir / "space.yaml"
    if (workdir / "run").exists():
        shutil.rmtree(workdir / "run")
    space.write_text(space_yaml(args))
    (workdir / "ray").mkdir(exist_ok=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(workdir / "ray")}
    rng = np.random.default_rng(args.seed)
    print(f"soak: {args.trials} trials x {args.epochs} epochs x {args.train_size} images, "
          f"{args.worker_kills} worker kills, {args.driver_kills} driver kills (SIG{args.signal}), "
          f"{args.node_kills} node kills, S3 outage {args.s3_outage:g} s, seed {args.seed}; work folder {workdir}",
          flush=True)
    place = Place(workdir, str(workdir / "run"), env)
    try:
        if args.s3_outage > 0:
            place.s3 = S3(workdir)
            place.out, place.env = "s3://soak/run", {**place.env, **place.s3.env}
        if args.node_kills > 0:  # the nodes get the S3 endpoint too: trial processes run on them
            place.nodes = Nodes(place.env)
            place.env = {**place.nodes.env, "PYTHONUNBUFFERED": "1"}
        with open(workdir / "driver.log", "w") as log:
            attempts, faults = run_under_faults(args, space, place, rng, log)
        finished = attempts[-1].end == "finished"
        sweep_s = time.time() - began
        checked, uri = Path(place.out), None
        if place.s3 and finished:  # check the run as it is on S3: a copy of every object
            place.s3.settle()
            checked, uri = workdir / "run-copy", place.out
            shutil.rmtree(checked, ignore_errors=True)
            place.s3.download("run", checked)
    finally:
        if place.nodes:
            place.nodes.shutdown()
        if place.s3:
            place.s3.close()

    resumed: dict[str, int] = {}
    for a in attempts:
        for folder in a.interrupted:
            resumed[folder] = resumed.get(folder, 0) + 1
    rows, counts, problems = (verify(checked, args.trials, args.epochs, args.train_size, resumed, uri)
                              if finished else ([], {}, []))
    false_finishes = [(i + 1, a.claimed) for i, a in enumerate(attempts) if a.claimed]
    for k, claim in false_finishes:
        problems.append(f"false finish: driver run {k} was interrupted with trials unfinished, exited 0 and {claim}")
    if not finished:
        problems.append(f"the sweep never finished: last attempt {attempts[-1].end} (see {workdir / 'driver.log'})")
        counts["lost"] = args.trials

    print("\nattempts (one driver each)")
    print(table([{"#": i + 1, "resume": a.resume, "seconds": round(a.seconds, 1), "end": a.end, "rc": a.rc,
                  "progress": a.progress_at_end, "leaked processes": a.leaked} for i, a in enumerate(attempts)],
                ["#", "resume", "seconds", "end", "rc", "progress", "leaked processes"]))
    print("\nfaults (at progress: epochs reported in all, 0 = while the driver starts; then a delay)")
    print(table([{"t (s)": None if f.at_s is None else round(f.at_s), "kind": f.kind, "at progress": f.at_progress,
                  "delay s": round(f.delay_s, 2), "what happened": f.done} for f in faults],
                ["t (s)", "kind", "at progress", "delay s", "what happened"]))
    if rows:
        print("\ntrials (processes: that reported results; worker restarts: Tune's, after a lost trial "
              "process or node; driver resumes: caught mid-way by a driver kill)")
        print(table(rows, ["trial", "status", "fid", "mig", "epochs", "processes", "worker restarts",
                           "driver resumes", "epochs reported twice", "checkpoint"]))

    injected = {kind: sum(f.kind == kind and f.at_s is not None for f in faults)
                for kind in ("worker", "driver", "node", "s3")}
    planned = {kind: sum(f.kind == kind for f in faults) for kind in injected}
    rerun = sum(1 for r in rows if (r["processes"] or 0) > 1 or (r["worker restarts"] or 0) > 0
                or (r["driver resumes"] or 0) > 0)
    failures = ("lost", "duplicated", "failed", "corrupt", "leftovers", "stray_checkpoints", "misnumbered")
    bad = (not finished) or bool(false_finishes) or any(counts.get(k, 0) for k in failures)
    print("\ntotals")
    print(table([
        {"what": "faults injected", "value": f"{sum(injected.values())} ("
                                             f"{injected['worker']} trial-process kills of {planned['worker']} planned, "
                                             f"{injected['driver']} driver kills of {planned['driver']}, "
                                             f"{injected['node']} node losses of {planned['node']}, "
                                             f"{injected['s3']} S3 outages of {planned['s3']} ({args.s3_outage:g} s))"},
        {"what": "driver runs", "value": f"{len(attempts)} ({sum(a.resume for a in attempts)} with --resume)"},
        {"what": "trials re-run (restarted at least once)", "value": f"{rerun} of {args.trials}"},
        {"what": "restarts (worker / driver)", "value": f"{sum(r['worker restarts'] or 0 for r in rows)} / "
                                                        f"{sum(r['driver resumes'] or 0 for r in rows)}"},
        {"what": "epochs reported twice", "value": sum(r["epochs reported twice"] or 0 for r in rows)},
        {"what": "trials present / expected", "value": f"{len(rows)} / {args.trials}"},
        {"what": "trials lost", "value": counts.get("lost", 0)},
        {"what": "trials duplicated", "value": counts.get("duplicated", 0)},
        {"what": "trials failed", "value": counts.get("failed", 0)},
        {"what": "corrupt files or records", "value": counts.get("corrupt", 0)},
        {"what": "interrupted drivers that exited 0 with results", "value": len(false_finishes)},
        {"what": "report front differs from Optuna's best_trials", "value": counts.get("misnumbered", 0)},
        {"what": "Optuna trials numbered after an orphan (informational)", "value": counts.get("optuna_shifted", 0)},
        {"what": "unreadable checkpoints under tune/", "value": counts.get("stray_checkpoints", 0)},
        {"what": "leftover temporary files", "value": counts.get("leftovers", 0)},
        {"what": "processes leaked by killed drivers", "value": sum(a.leaked for a in attempts)},
        {"what": "optuna journal trials by state", "value": counts.get("optuna", "-")},
        {"what": "wall time", "value": f"{sweep_s:.0f} s for the sweep, {time.time() - began:.0f} s with the checks"},
        {"what": "result", "value": "FAIL" if bad else "nothing lost, nothing corrupt"},
    ], ["what", "value"]))
    for line in problems:
        print(" ", line)
    if args.keep or bad or args.workdir:
        print(f"\nwork folder kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
