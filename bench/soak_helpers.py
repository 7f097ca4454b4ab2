"""What bench/soak.py is built from: processes found through ``/proc``, Tune's records of the
trials, and the checks of the finished run (the faults themselves: bench/soak_faults.py).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL_TITLES = ("ray::ImplicitFunc", "ray::RayTrainWorker")  # a trial's process (in-trial / Ray Train)
FOLDER = re.compile(r"^_trial_([0-9a-f]+)_(\d+)_")
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEKEYFORSOAK001", "AWS_SECRET_ACCESS_KEY": "fake/soak/secret",
             "AWS_DEFAULT_REGION": "us-east-1"}


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


def trial_workers(pids: list[int]) -> list[int]:
    return sorted(p for p in pids if cmdline(p).startswith(TRIAL_TITLES))


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


def reported(dirs: list[Path]) -> dict[str, set[int]]:
    """Trial folder -> epochs reported, from every ``result.json`` under ``dirs`` (Tune's trial
    folders: the run's own for a local run, and the drivers' staging folders, which hold them
    while a run on S3 is synced)."""
    seen: dict[str, set[int]] = {}
    for d in dirs:
        for path in d.glob("_trial_*/result.json"):
            for row in read_json_lines(path)[0]:
                if "epoch" in row:
                    seen.setdefault(path.parent.name, set()).add(row["epoch"])
    return seen


def progress(dirs: list[Path]) -> int:
    """Distinct (trial folder, epoch) results reported so far."""
    return sum(len(e) for e in reported(dirs).values())


def unfinished(dirs: list[Path], epochs: int) -> set[str]:
    """Trial folders that reported some epochs but not the last one."""
    return {folder for folder, e in reported(dirs).items() if e and max(e) < epochs}


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


def false_finish(trials_table: Path, n: int) -> str | None:
    """What an interrupted driver that still exited 0 claims: ``trials.parquet`` listing trials
    as failed (or missing) that were only interrupted. None if it wrote no such table."""
    import pyarrow.parquet as pq

    try:
        trials = pq.read_table(trials_table).to_pandas()
    except Exception:  # noqa: BLE001 - no table (or none readable): nothing claimed
        return None
    failed = trials[trials["status"] != "ok"]
    if len(trials) == n and failed.empty:
        return None
    first = f"; e.g. #{failed['trial_number'].iloc[0]}: {failed['error'].iloc[0]}" if len(failed) else ""
    return f"wrote trials.parquet with {len(trials)} trials, {len(failed)} failed{first}"


# ---------------------------------------------------------------- checks of the finished run

def png_ok(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:-4] == b"\x00\x00\x00\x00IEND"


def verify(out: Path, n: int, epochs: int, images_per_epoch: int, resumed: dict[str, int],
           uri: str | None = None) -> tuple[list[dict], dict, list[str]]:
    """Per-trial rows, counts and one line per problem found in the run folder ``out`` (for a
    run on S3, a copy of it: ``uri`` is where it is, so checkpoint URIs map into the copy)."""
    import pyarrow.parquet as pq
    import torch  # noqa: F401  (checkpoint loading)
    from disentune.checkpoints import load_model, load_state
    from disentune.reports.storage import read_table

    problems: list[str] = []
    counts = {"lost": 0, "duplicated": 0, "failed": 0, "corrupt": 0, "leftovers": 0, "stray_checkpoints": 0}

    def local(checkpoint_uri: str) -> str:
        return str(out / checkpoint_uri.removeprefix(uri + "/")) if uri else checkpoint_uri

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
                load_model(local(r.checkpoint_uri))
                state = load_state(local(r.checkpoint_uri))
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
