"""The main job: search space -> prepared data and extractor -> Tune/Optuna trials -> report.

Each step is a plain call on typed values; :func:`run_sweep` only wires them together and owns
the Ray instance when it starts one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from disentune import provenance
from disentune.anomaly.runner import AnomalyResult, detect_run
from disentune.config import Experiment
from disentune.data.cache import cache_dir
from disentune.checks import check_training_data, checked_experiment
from disentune.data.open import data_key, open_dataset
from disentune.errors import ConfigError, UserError
from disentune.evaluate import EvaluationResult, evaluate_run
from disentune.metrics.factor_net import EXTRACTOR_SEED, ensure_factor_net
from disentune.parallel import ray_session
from disentune.reports.build import ReportPaths, build_report
from disentune.reports.tables import curves_table, replicates_table, trials_table
from disentune.reports.storage import write_table
from disentune.search.outcome import TrialOutcome
from disentune.search.placement import check_fits, local_node, uses_gpu
from disentune.storage import (
    check_writable,
    exists,
    filesystem,
    is_remote,
    join,
    normalize,
    read_bytes,
    write_bytes,
)


@dataclass(frozen=True)
class SweepResult:
    run_uri: str
    outcomes: list[TrialOutcome]
    report: ReportPaths
    seconds: float
    evaluation: EvaluationResult | None = None
    anomaly: AnomalyResult | None = None

    @property
    def run_dir(self) -> Path:
        """The run folder, for local runs."""
        return Path(self.run_uri)


RUN_FILES = ("tune", "trials.parquet", "replicates.parquet", "pareto.parquet", "curves.parquet", "experiment.json",
             "optuna.journal", "index.html", "figures", "evaluations.parquet", "anomaly_metrics.parquet",
             "anomaly_scores.parquet")


def prepare_output(out: str, *, force: bool, resume: bool = False) -> None:
    """Check the location is writable; refuse to overwrite another run's results unless
    ``force``, which removes that run's files first (and nothing else in the folder). With
    ``resume`` the run's files stay: the sweep continues from Tune's state there."""
    check_writable(out)
    if resume:
        if not exists(join(out, "tune")):
            raise UserError(f"{out}: no sweep to resume there (no tune/ state); run without --resume")
        return
    if exists(join(out, "tune")) and not exists(join(out, "trials.parquet")) and not force:
        raise UserError(f"{out}: holds an unfinished sweep; continue it with --resume or replace it with --force")
    if exists(join(out, "trials.parquet")) and not force:
        raise UserError(f"{out}: already holds a run's results; choose another --out or pass --force")
    if force:
        fs, path = filesystem(out)
        for name in RUN_FILES:
            if fs.exists(join(path, name)):
                fs.rm(join(path, name), recursive=True)


def describe(exp: Experiment) -> dict:
    """The run's config and software versions, as stored in ``experiment.json``."""
    import optuna
    import ray
    import torch

    return {
        "experiment": dataclasses.asdict(exp),
        "code": dataclasses.asdict(provenance.current()),
        "versions": {
            "disentune": provenance.current().label, "python": platform.python_version(),
            "torch": torch.__version__, "ray": ray.__version__, "optuna": optuna.__version__,
        },
    }


def journal_path(out: str) -> Path:
    """Where the Optuna journal is written during the sweep: inside a local run folder, or a
    local cache file for a remote one (uploaded at the end, downloaded again on --resume)."""
    if not is_remote(out):
        return Path(out) / "optuna.journal"
    return cache_dir() / "journals" / f"{hashlib.sha256(out.encode()).hexdigest()[:16]}.journal"


def run_sweep(exp: Experiment, *, out: str | Path, address: str = "local", force: bool = False,
              resume: bool = False, num_cpus: int | None = None) -> SweepResult:
    import ray

    from disentune.search.tracking import check_trackers
    from disentune.search.tune import run_trials

    began = time.perf_counter()
    out = normalize(out)
    if not exp.searched():
        raise ConfigError("space: every parameter is fixed, so there is nothing to search; give one a "
                          "range or a choice (to repeat one config, search its seed: {choice: [0, 1, 2]})")
    check_trackers(exp.tracking)  # a tracker whose package is missing: one line, before Ray starts
    # the data is checked before anything at ``out`` is touched: bad input never costs a result
    data = open_dataset(exp.data)
    exp = checked_experiment(exp, data)
    full_images = check_training_data(exp, data)
    if address == "local" and not ray.is_initialized():  # its resources are known before it starts
        node = local_node(num_cpus)
        check_fits(exp, [node], uses_gpu(exp.train.use_gpu, [node]), can_grow=False)
    prepare_output(out, force=force, resume=resume)
    journal = journal_path(out)
    journal.parent.mkdir(parents=True, exist_ok=True)
    if is_remote(out) and resume and exists(join(out, "optuna.journal")):
        journal.write_bytes(read_bytes(join(out, "optuna.journal")))
    elif is_remote(out) and not resume:  # a cached journal of an earlier run there is not this study
        journal.unlink(missing_ok=True)
    if not resume:
        write_bytes(join(out, "experiment.json"), json.dumps(describe(exp), indent=2, default=list).encode())
    # the dataset-factor FID network (data without factors has none: Inception, see checks.py)
    extractor = ensure_factor_net(data, data_key(exp.data.dataset, data), exp.data.resolution,
                                  seed=EXTRACTOR_SEED) if data.has_factors else None

    with ray_session(address, num_cpus):
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        use_gpu = uses_gpu(exp.train.use_gpu, nodes)
        # a cluster may grow through its autoscaler: then only warn, the wait is bounded
        warning = check_fits(exp, nodes, use_gpu, can_grow=address != "local")
        if warning:
            print(f"disentune: warning: {warning}", file=sys.stderr, flush=True)
        try:
            outcomes = run_trials(
                exp, storage=join(out, "tune"), extractor_path=extractor, use_gpu=bool(use_gpu),
                journal=journal, cluster=ray.cluster_resources(), resume=resume, full_images=full_images,
            )
        finally:  # interrupted too: --resume on another machine continues the same study
            if is_remote(out) and journal.exists():
                write_bytes(join(out, "optuna.journal"), journal.read_bytes())
        run_uri = out
        objectives = [(o.name, o.direction) for o in exp.search.objectives]
        write_table(curves_table(outcomes, exp.name), join(run_uri, "curves.parquet"))
        write_table(replicates_table(outcomes, run_id=exp.name, objectives=objectives),
                    join(run_uri, "replicates.parquet"))
        # the trials table last: it marks the run finished (see prepare_output)
        write_table(trials_table(outcomes, run_id=exp.name, code_version=provenance.current().label,
                                 objectives=objectives, created_at=dt.datetime.now(dt.timezone.utc)),
                    join(run_uri, "trials.parquet"))
        # the evaluators run their tasks on this same Ray instance
        evaluation = evaluate_run(run_uri) if exp.evaluation.run_suite == "after_sweep" else None
        anomaly = detect_run(run_uri) if exp.anomaly.run == "after_sweep" else None

    report = build_report(run_uri, title=f"disentune: {exp.name}", summary=[
        ("variants", ", ".join(map(str, exp.param("variant").values))),
        ("searched", ", ".join(exp.searched()) or "nothing"),
        ("sampler", exp.search.sampler), ("seed", str(exp.seed)),
        ("data", f"{exp.data.dataset} {exp.data.resolution}px, train_size={exp.data.train_size or 'all'}"),
        ("code version", provenance.current().label),
    ])
    return SweepResult(out, outcomes, report, time.perf_counter() - began, evaluation, anomaly)


def with_overrides(exp: Experiment, *, samples: int | None, seed: int | None) -> Experiment:
    if samples is not None:
        exp = dataclasses.replace(exp, search=dataclasses.replace(exp.search, num_samples=samples))
    if seed is not None:
        exp = dataclasses.replace(exp, seed=seed)
    return exp


def summarise(result: SweepResult) -> str:
    """A few lines for the terminal: trials, front, where the report is, time split per trial."""
    from disentune.reports.storage import read_table

    trials = read_table(join(result.run_uri, "trials.parquet")).to_pylist()
    stored = json.loads(read_bytes(join(result.run_uri, "experiment.json")))
    names = [o["name"] for o in stored["experiment"]["search"]["objectives"]]
    failed = sum(t["status"] == "failed" for t in trials)
    replicated = len(result.outcomes) > len(trials)
    lines = [f"{len(trials)} trials ({failed} failed"
             + (f"; {len(result.outcomes)} replicates" if replicated else "") + f") in {result.seconds:.0f} s"]
    for t in trials:
        if t["status"] == "ok":
            state = " ".join(f"{n}={t[n]:.3g}" for n in names)
            if replicated:
                state += f" (median of {t['replicates_ok']}/{t['replicates']} replicates)"
        elif t["status"] == "stopped":
            state = f"stopped early at {t['stopped_at_images']} images: " + " ".join(f"{n}={t[n]:.3g}" for n in names)
        else:
            state = f"FAILED: {t['error']}"
        lines.append(f"  #{t['trial_number']} {t['variant']} lambda_mi={t['lambda_mi'] or 0:.3g} "
                     f"lambda_tc={t['lambda_tc'] or 0:.3g}: {state}")
    ok = [o for o in result.outcomes if o.status == "ok"]
    if ok:
        startup = statistics.median(o.metrics.get("startup_seconds", float("nan")) for o in ok)
        train = statistics.median(o.metrics.get("train_seconds", float("nan")) for o in ok)
        evaluate = statistics.median(o.metrics.get("eval_seconds", float("nan")) for o in ok)
        wall = statistics.median(o.metrics.get("time_total_s", float("nan")) for o in ok)
        lines.append(f"per {'replicate' if replicated else 'trial'} (median): wall {wall:.1f} s = start-up "
                     f"{startup:.1f} s + training {train:.1f} s + objectives {evaluate:.1f} s + rest")
    for stage in (result.evaluation, result.anomaly):
        if stage is not None:
            lines.append(stage.summary())
    front = ", ".join(f"#{n}" for n in result.report.front) or "none"
    agree = "" if result.report.optuna_front is None else (
        " (Optuna's best_trials agree)" if result.report.optuna_front == result.report.front
        else f" (Optuna's best_trials differ: {result.report.optuna_front})")
    lines.append(f"Pareto front: {front}{agree}")
    lines.append(f"report: {result.report.index}")
    return "\n".join(lines)
