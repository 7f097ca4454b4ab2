"""Soak test: a sweep of many tiny trials while random trial workers and the driver are killed.

    python bench/soak.py [--trials 16] [--epochs 3] [--worker-kills 8] [--driver-kills 3] [--seed 0]
                         [--signal KILL] [--workdir DIR] [--keep]

Writes a tiny search space (beta-TCVAE, 32 px, ``--train-size`` images, 2 trials at a time, the
metric suite off), runs ``python -m disentune sweep`` as a subprocess in its own session and, with
a seeded RNG, injects faults as the sweep progresses (progress = epochs reported so far, read
from Tune's ``result.json`` files):

- worker kills: SIGKILL of a random running trial process (``ray::ImplicitFunc``) of the
  driver's Ray instance, at random points of progress plus a random delay; Tune restarts the trial
  from its last checkpoint (``train.max_failures`` is set above the number of kills);
- driver kills: ``--signal`` (default SIGKILL) to the driver's process group (the driver and the
  Ray instance it started; any process of its session still alive 15 s later is killed and counted
  as leaked), then ``disentune sweep --resume``; repeated until a run finishes by itself.

Afterwards it checks the run folder: every trial number 0..N-1 in ``trials.parquet`` exactly once,
ok with finite fid and mig, all epochs and images, one curve row per (trial, epoch, metric), its
final checkpoint loads; every Parquet file, ``experiment.json``, every checkpoint under ``tune/``
and the figures read back; no ``.part`` / ``.tmp`` leftovers; ``index.html`` counts N trials; the
Optuna journal holds N complete trials and none still RUNNING (one handed to a killed driver and
never run is marked FAIL), and the report's cross-check of the front with Optuna's
``best_trials`` says "agrees". With ``--signal INT``/``TERM`` a driver that exits 0
although trials were unfinished, having written ``trials.parquet``, counts as a false finish. It
prints one row per trial and the totals (faults injected, trials re-run, lost, duplicated,
corrupt) and exits with status 1 if anything was lost, duplicated, failed, corrupt or misnumbered,
a driver finished falsely, or the sweep never finished.

Ray's session files go to ``WORKDIR/ray`` (``RAY_TMPDIR``), so nothing here touches another Ray
instance on the machine. Rendered data come from ``$DISENTUNE_CACHE`` as usual (point it at a
lasting folder to render once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRIAL_TITLES = ("ray::ImplicitFunc", "ray::RayTrainWorker")  # a trial's process (in-trial / Ray Train)
FOLDER = re.compile(r"^_trial_([0-9a-f]+)_(\d+)_")
POLL_S = 0.25


# ---------------------------------------------------------------- processes (Linux /proc)

def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the driver and everything it started; Ray's workers
    leave the driver's process group but stay in its session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid and alive(int(entry)):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def trial_workers(sid: int) -> list[int]:
    return sorted(p for p in session_pids(sid) if cmdline(p).startswith(TRIAL_TITLES))


def reap_session(sid: int, grace_s: float = 15.0) -> int:
    """Wait for session ``sid`` to die out; SIGKILL what is left. Returns how many were left."""
    deadline = time.time() + grace_s
    while time.time() < deadline and session_pids(sid):
        time.sleep(0.5)
    left = session_pids(sid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(left)


# ---------------------------------------------------------------- Tune's records of the trials

def read_json_lines(path: Path) -> tuple[list[dict], int]:
    """The parseable lines of a JSON-lines file and how many were not (a cut-off last line)."""
    rows, bad = [], 0
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [], 0
    for line in text.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                bad += 1
    return rows, bad


def progress(tune_dir: Path) -> int:
    """Distinct (trial folder, epoch) results reported so far."""
    seen = set()
    for path in tune_dir.glob("_trial_*/result.json"):
        for row in read_json_lines(path)[0]:
            if "epoch" in row:
                seen.add((path.parent.name, row["epoch"]))
    return len(seen)


@dataclass
class TuneTrial:
    """What Tune's folders say about one trial folder."""

    folder: str
    trial_id: str
    number: int  # the folder's 1-based index - 1
    epochs: list[int] = field(default_factory=list)  # every reported epoch, in order
    pids: set[int] = field(default_factory=set)  # processes that reported results
    bad_lines: int = 0
    num_failures: int | None = None  # Tune's count of this trial's worker failures
    status: str | None = None

    @property
    def redone(self) -> int:
        """Epochs reported more than once (a result the driver logged but lost on resume)."""
        return len(self.epochs) - len(set(self.epochs))


def unfinished(tune_dir: Path, epochs: int) -> set[str]:
    """Trial folders that reported some epochs but not the last one."""
    folders = set()
    for path in tune_dir.glob("_trial_*/result.json"):
        reported = [r["epoch"] for r in read_json_lines(path)[0] if "epoch" in r]
        if reported and max(reported) < epochs:
            folders.add(path.parent.name)
    return folders


def tune_trials(tune_dir: Path) -> dict[str, TuneTrial]:
    trials = {}
    for folder in sorted(p for p in tune_dir.glob("_trial_*") if p.is_dir()):
        match = FOLDER.match(folder.name)
        if not match:
            continue
        t = TuneTrial(folder.name, match.group(1), int(match.group(2)) - 1)
        rows, t.bad_lines = read_json_lines(folder / "result.json")
        t.epochs = [r["epoch"] for r in rows if "epoch" in r]
        t.pids = {r["pid"] for r in rows if "pid" in r}
        trials[t.trial_id] = t
    states = sorted(tune_dir.glob("experiment_state-*.json"))  # one per driver, named by its start time
    if states:
        try:
            for trial_json, meta_json in json.loads(states[-1].read_text())["trial_data"]:
                info, meta = json.loads(trial_json), json.loads(meta_json)
                if info.get("trial_id") in trials:
                    t = trials[info["trial_id"]]
                    t.status, t.num_failures = info.get("status"), meta.get("num_failures")
        except (OSError, ValueError, KeyError, TypeError):
            pass  # reported by the corruption checks
    return trials


def false_finish(out: Path, n: int) -> str | None:
    """What an interrupted driver that still exited 0 claims: ``trials.parquet`` listing trials
    as failed (or missing) that were only interrupted. None if it wrote no such table."""
    import pyarrow.parquet as pq

    try:
        trials = pq.read_table(out / "trials.parquet").to_pandas()
    except Exception:  # noqa: BLE001 - no table (or none readable): nothing claimed
        return None
    failed = trials[trials["status"] != "ok"]
    if len(trials) == n and failed.empty:
        return None
    first = f"; e.g. #{failed['trial_number'].iloc[0]}: {failed['error'].iloc[0]}" if len(failed) else ""
    return f"wrote trials.parquet with {len(trials)} trials, {len(failed)} failed{first}"


# ---------------------------------------------------------------- the sweep under faults

def space_yaml(args: argparse.Namespace) -> str:
    import yaml

    return yaml.safe_dump({
        "name": "soak", "seed": args.seed,
        "data": {"resolution": 32, "train_size": args.train_size},
        "train": {"epochs": args.epochs, "launcher": "in_trial",
                  "max_failures": min(100, args.worker_kills + 2)},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"},
        "anomaly": {"run": "never"},
        "search": {"num_samples": args.trials, "max_concurrent_trials": 2, "sampler": "tpe"},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    }, sort_keys=False)


@dataclass
class Fault:
    kind: str  # "worker" or "driver"
    at_progress: int
    delay_s: float
    due: float | None = None  # wall time once its progress is reached
    done: str = ""  # what happened: "killed pid ..." / "skipped: ..."
    at_s: float | None = None  # when it was injected, seconds into the soak


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


def run_under_faults(args: argparse.Namespace, space: Path, out: Path, env: dict,
                     rng: np.random.Generator, log) -> tuple[list[Attempt], list[Fault], list[Fault]]:
    total = args.trials * args.epochs
    workers = [Fault("worker", int(p), float(rng.uniform(0, args.max_delay)))
               for p in sorted(rng.integers(1, total, size=args.worker_kills))]
    # some drivers die while starting Ray or restoring Tune's state (progress 0), the others later
    starting = int(rng.binomial(args.driver_kills, args.startup_share))
    drivers = [Fault("driver", int(p), float(rng.uniform(0, args.max_delay))) for p in
               sorted(rng.choice(np.arange(1, total + 1), size=min(args.driver_kills - starting, total), replace=False))]
    for _ in range(starting):
        drivers.insert(int(rng.integers(0, len(drivers) + 1)), Fault("driver", 0, float(rng.uniform(1.0, args.startup_s))))
    pending_w, pending_d = list(workers), list(drivers)
    attempts: list[Attempt] = []
    tune_dir = out / "tune" / "tune"
    started = time.time()
    failures_in_a_row = 0
    while True:
        resume = (out / "tune").exists()
        cmd = [sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out)]
        cmd += ["--resume"] if resume else []
        log.write(f"\n==== attempt {len(attempts) + 1}: {' '.join(cmd)}\n")
        log.flush()
        driver = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        attempt = Attempt(resume, time.time())
        attempts.append(attempt)
        kill = pending_d[0] if pending_d else None
        for fault in pending_w:  # carried over from a killed driver: re-armed in this one
            fault.due = None
        last_progress, last_change = -1, time.time()
        while driver.poll() is None:
            time.sleep(POLL_S)
            now = time.time()
            done = progress(tune_dir)
            if done != last_progress:
                last_progress, last_change = done, now
            for fault in ([kill] if kill else []) + pending_w:
                if fault.due is None and done >= fault.at_progress:
                    fault.due = now + fault.delay_s
            for fault in [f for f in pending_w if f.due is not None and now >= f.due]:
                victims = trial_workers(driver.pid)
                if victims:
                    victim = int(rng.choice(victims))
                    try:
                        os.kill(victim, signal.SIGKILL)
                        fault.done = f"killed trial process {victim} at progress {done}"
                        fault.at_s = now - started
                    except OSError as err:
                        fault.done = f"skipped: {err}"
                    pending_w.remove(fault)
                elif now - fault.due > 60:
                    fault.done = "skipped: no trial process ran for 60 s"
                    pending_w.remove(fault)
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
        attempt.progress_at_end = progress(tune_dir)
        if attempt.end:  # the driver was killed: these trials continue on --resume
            attempt.interrupted = unfinished(tune_dir, args.epochs)
        if attempt.end.startswith("signalled") and attempt.progress_at_end < total:
            attempt.claimed = false_finish(out, args.trials)
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
    for fault in pending_w + pending_d:
        fault.done = fault.done or "not injected: the sweep finished first"
    return attempts, workers, drivers


# ---------------------------------------------------------------- checks of the finished run

def png_ok(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:-4] == b"\x00\x00\x00\x00IEND"


def verify(out: Path, n: int, epochs: int, images_per_epoch: int,
           resumed: dict[str, int]) -> tuple[list[dict], dict, list[str]]:
    """Per-trial rows, counts and one line per problem found in the run folder."""
    import pyarrow.parquet as pq
    import torch  # noqa: F401  (checkpoint loading)
    from disentune.reports.storage import read_table
    from disentune.checkpoints import load_model, load_state

    problems: list[str] = []
    counts = {"lost": 0, "duplicated": 0, "failed": 0, "corrupt": 0, "leftovers": 0, "stray_checkpoints": 0}

    def corrupt(msg: str) -> None:
        counts["corrupt"] += 1
        problems.append(f"corrupt: {msg}")

    # leftovers of interrupted writes: atomic_write's .<name>.<uuid>.part, state.pt.part, *.tmp
    for path in out.rglob("*"):
        if path.is_file() and (path.name.endswith((".part", ".tmp")) or ".tmp" in path.name):
            counts["leftovers"] += 1
            problems.append(f"leftover temporary file: {path.relative_to(out)}")

    # every Parquet file reads (the platform's tables also pass their schema check)
    for path in sorted(out.rglob("*.parquet")):
        try:
            if path.parent == out:
                read_table(str(path))
            else:
                pq.read_table(path)
        except Exception as err:  # noqa: BLE001
            corrupt(f"{path.relative_to(out)}: {str(err).splitlines()[0]}")
    for name in ("experiment.json",):
        try:
            json.loads((out / name).read_text())
        except (OSError, ValueError) as err:
            corrupt(f"{name}: {err}")
    for path in sorted((out / "figures").glob("*.png")):
        if not png_ok(path.read_bytes()):
            corrupt(f"{path.relative_to(out)}: not a complete PNG")

    # every checkpoint Tune kept (the trials' final ones are checked again below)
    for path in sorted((out / "tune").rglob("state.pt")):
        try:
            load_state(path.parent)
        except Exception as err:  # noqa: BLE001
            counts["stray_checkpoints"] += 1
            problems.append(f"unreadable checkpoint: {path.relative_to(out)} ({err})")

    try:
        trials = read_table(str(out / "trials.parquet")).to_pandas()
    except Exception as err:  # noqa: BLE001
        problems.append(f"lost: trials.parquet unreadable ({str(err).splitlines()[0]})")
        counts["lost"] = n
        return [], counts, problems
    try:
        curves = read_table(str(out / "curves.parquet")).to_pandas()
    except Exception:  # noqa: BLE001 - counted above
        curves = None
    else:
        dup = curves.duplicated(["trial_number", "epoch", "metric"]).sum()
        if dup:
            corrupt(f"curves.parquet: {dup} duplicated (trial, epoch, metric) rows")

    tune = {t.trial_id: t for t in tune_trials(out / "tune" / "tune").values()}
    numbers = trials["trial_number"].tolist()
    for k in sorted(set(range(n)) - set(numbers)):
        counts["lost"] += 1
        problems.append(f"lost: trial #{k} is not in trials.parquet")
    extra = [k for k in numbers if not 0 <= k < n]
    dups = len(numbers) - len(set(numbers)) + (len(trials) - trials["trial_id"].nunique())
    if dups or extra:
        counts["duplicated"] += dups + len(extra)
        problems.append(f"duplicated: trial numbers {sorted(numbers)}, ids unique: {trials['trial_id'].is_unique}")

    rows = []
    for r in trials.sort_values("trial_number").itertuples():
        t = tune.get(r.trial_id)
        row = {"trial": r.trial_number, "status": r.status, "fid": r.fid, "mig": r.mig,
               "epochs": r.epochs, "processes": len(t.pids) if t else None,
               "worker restarts": t.num_failures if t else None,
               "driver resumes": resumed.get(t.folder, 0) if t else None,
               "epochs reported twice": t.redone if t else None, "checkpoint": "-"}
        where = f"trial #{r.trial_number} ({r.trial_id})"
        if r.status != "ok":
            counts["failed"] += 1
            problems.append(f"failed: {where}: {r.error or 'NO REASON GIVEN'}")
        else:
            if not (math.isfinite(r.fid) and math.isfinite(r.mig)):
                corrupt(f"{where}: fid={r.fid} mig={r.mig}")
            if r.epochs != epochs or r.images_seen != epochs * images_per_epoch:
                corrupt(f"{where}: epochs={r.epochs} images_seen={r.images_seen}, "
                        f"expected {epochs} and {epochs * images_per_epoch}")
            if curves is not None:
                got = sorted(set(curves.loc[curves["trial_number"] == r.trial_number, "epoch"]))
                if got != list(range(1, epochs + 1)):
                    corrupt(f"{where}: curves.parquet has epochs {got}")
            try:
                load_model(r.checkpoint_uri)
                state = load_state(r.checkpoint_uri)
                row["checkpoint"] = "loads"
                if state["epoch"] != epochs:
                    corrupt(f"{where}: final checkpoint is from epoch {state['epoch']}")
                    row["checkpoint"] = f"epoch {state['epoch']}"
            except Exception as err:  # noqa: BLE001
                corrupt(f"{where}: final checkpoint {r.checkpoint_uri}: {err}")
                row["checkpoint"] = "BROKEN"
        rows.append(row)

    strays = sorted(t.folder for t in tune.values() if t.trial_id not in set(trials["trial_id"]))
    for folder in strays:  # a trial Tune started but the results do not list: informational
        problems.append(f"note: tune folder of no listed trial: {folder}")

    failed = int((trials["status"] != "ok").sum())
    page = ""
    try:
        page = (out / "index.html").read_text()
        if f"{len(trials)} ({failed} failed)" not in page or not page.rstrip().endswith("</html>"):
            corrupt(f"index.html does not say {len(trials)} ({failed} failed) trials or is cut off")
    except OSError as err:
        corrupt(f"index.html: {err}")

    try:  # the Optuna study: every trial told once, complete
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name="soak", storage=JournalStorage(JournalFileBackend(str(out / "optuna.journal"))))
        optuna_trials = study.get_trials(deepcopy=False)
        states = [t.state.name for t in optuna_trials]
        counts["optuna"] = {s: states.count(s) for s in sorted(set(states))}
        if states.count("COMPLETE") != len(trials) - failed or len(states) != n:
            problems.append(f"note: optuna.journal holds {len(states)} trials {counts['optuna']}, "
                            f"the run {len(trials)} ({failed} failed)")
        # a trial Optuna handed to a killed driver is never run: the finished sweep marks it FAIL
        if states.count("RUNNING"):
            corrupt(f"optuna.journal: {states.count('RUNNING')} trials still RUNNING after the sweep")
        by_values = {(r.fid, r.mig): r.trial_number for r in trials.itertuples() if r.status == "ok"}
        shifted = [t for t in optuna_trials
                   if t.state.name == "COMPLETE" and by_values.get(tuple(t.values)) != t.number]
        counts["optuna_shifted"] = len(shifted)  # informational: the report matches by values
        # the report's cross-check of the Pareto front with Optuna's best_trials must agree
        says = re.search(r"Optuna best_trials</b>:\s*([^<]*)<", page)
        if not says or not says.group(1).strip().startswith("agrees"):
            counts["misnumbered"] = 1
            problems.append(f"report: the Optuna best_trials row says {says.group(1) if says else 'nothing'}")
    except Exception as err:  # noqa: BLE001
        corrupt(f"optuna.journal: {type(err).__name__}: {err}")
    return rows, counts, problems


# ---------------------------------------------------------------- main

def table(rows: list[dict], columns: list[str]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=1536, help="images per epoch (a multiple of 32)")
    parser.add_argument("--worker-kills", type=int, default=8)
    parser.add_argument("--driver-kills", type=int, default=3)
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

    began = time.time()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="soak-"))  # short: Ray's socket paths
    workdir.mkdir(parents=True, exist_ok=True)
    out, space = workdir / "run", workdir / "space.yaml"
    if out.exists():
        shutil.rmtree(out)
    space.write_text(space_yaml(args))
    (workdir / "ray").mkdir(exist_ok=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(workdir / "ray")}
    rng = np.random.default_rng(args.seed)
    print(f"soak: {args.trials} trials x {args.epochs} epochs x {args.train_size} images, "
          f"{args.worker_kills} worker kills, {args.driver_kills} driver kills (SIG{args.signal}), seed {args.seed}; "
          f"work folder {workdir}", flush=True)
    with open(workdir / "driver.log", "w") as log:
        attempts, workers, drivers = run_under_faults(args, space, out, env, rng, log)
    finished = attempts[-1].end == "finished"
    sweep_s = time.time() - began

    resumed: dict[str, int] = {}
    for a in attempts:
        for folder in a.interrupted:
            resumed[folder] = resumed.get(folder, 0) + 1
    rows, counts, problems = (verify(out, args.trials, args.epochs, args.train_size, resumed) if finished
                              else ([], {}, []))
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
                  "delay s": round(f.delay_s, 2), "what happened": f.done}
                 for f in sorted(workers + drivers, key=lambda f: (f.at_s is None, f.at_s or 0))],
                ["t (s)", "kind", "at progress", "delay s", "what happened"]))
    if rows:
        print("\ntrials (processes: that reported results; worker restarts: Tune's, after a lost trial "
              "process; driver resumes: caught mid-way by a driver kill)")
        print(table(rows, ["trial", "status", "fid", "mig", "epochs", "processes", "worker restarts",
                           "driver resumes", "epochs reported twice", "checkpoint"]))

    injected_w = sum(f.done.startswith("killed") for f in workers)
    injected_d = sum(f.done.startswith("SIG") for f in drivers)
    rerun = sum(1 for r in rows if (r["processes"] or 0) > 1 or (r["worker restarts"] or 0) > 0
                or (r["driver resumes"] or 0) > 0)
    failures = ("lost", "duplicated", "failed", "corrupt", "leftovers", "stray_checkpoints", "misnumbered")
    bad = (not finished) or bool(false_finishes) or any(counts.get(k, 0) for k in failures)
    print("\ntotals")
    print(table([
        {"what": "faults injected", "value": f"{injected_w + injected_d} ({injected_w} trial-process kills of "
                                             f"{len(workers)} planned, {injected_d} driver kills of {len(drivers)})"},
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
