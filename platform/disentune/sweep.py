"""The main job: search space -> prepared data and extractor -> Tune/Optuna trials -> report.

Each step is a plain call on typed values; :func:`run_sweep` only wires them together and owns
the Ray instance when it starts one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from disentune import __version__
from disentune.config import Experiment
from disentune.errors import UserError
from disentune.metrics.factor_net import ensure_factor_net
from disentune.registry import DATASETS
from disentune.reports.build import ReportPaths, build_report, trials_table
from disentune.reports.storage import join, write_table
from disentune.search.outcome import TrialOutcome

EXTRACTOR_SEED = 0  # fixed, so FIDs of different runs share one extractor and stay comparable


def code_version() -> str:
    """Package version plus the git commit of the source tree (``+dirty`` if it has changes)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"


@dataclass(frozen=True)
class SweepResult:
    run_dir: Path
    outcomes: list[TrialOutcome]
    report: ReportPaths
    seconds: float


def prepare_output(out: Path, *, force: bool) -> None:
    """Refuse to overwrite another run's results unless ``force``; then start the folder afresh."""
    if (out / "trials.parquet").exists() and not force:
        raise UserError(f"{out}: already holds a run's results; choose another --out or pass --force")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"{out}: output location is not writable ({err.strerror})") from None
    if force:
        for name in ("tune", "trials.parquet", "pareto.parquet", "pareto.png", "index.html", "optuna.journal"):
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def run_sweep(exp: Experiment, *, out: Path, address: str = "local", force: bool = False,
              num_cpus: int | None = None) -> SweepResult:
    import ray

    from disentune.search.tune import run_trials

    began = time.perf_counter()
    out = out.resolve()
    prepare_output(out, force=force)
    data = DATASETS.get(exp.data.dataset)(resolution=exp.data.resolution)
    data.render()
    extractor = ensure_factor_net(data, exp.data.dataset, exp.data.resolution, seed=EXTRACTOR_SEED)

    started_ray = not ray.is_initialized()
    if started_ray:
        if address == "local":
            ray.init("local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)
        else:
            ray.init(address)
    try:
        use_gpu = exp.train.use_gpu
        if use_gpu == "auto":
            use_gpu = ray.cluster_resources().get("GPU", 0) > 0
        outcomes, _study = run_trials(
            exp, storage=out / "tune", extractor_path=extractor, use_gpu=bool(use_gpu),
            journal=out / "optuna.journal",
        )
    finally:
        if started_ray:
            ray.shutdown()

    run_uri = str(out)
    write_table(trials_table(outcomes, run_id=exp.name, code_version=code_version(),
                             created_at=dt.datetime.now(dt.timezone.utc)), join(run_uri, "trials.parquet"))
    report = build_report(run_uri, title=f"disentune: {exp.name}", summary=[
        ("variants", ", ".join(map(str, exp.param("variant").values))),
        ("searched", ", ".join(exp.searched()) or "nothing"),
        ("sampler", exp.search.sampler), ("seed", str(exp.seed)),
        ("data", f"{exp.data.dataset} {exp.data.resolution}px, train_size={exp.data.train_size or 'all'}"),
        ("code version", code_version()),
    ])
    return SweepResult(out, outcomes, report, time.perf_counter() - began)


def with_overrides(exp: Experiment, *, samples: int | None, seed: int | None) -> Experiment:
    if samples is not None:
        exp = dataclasses.replace(exp, search=dataclasses.replace(exp.search, num_samples=samples))
    if seed is not None:
        exp = dataclasses.replace(exp, seed=seed)
    return exp


def summarise(result: SweepResult) -> str:
    """A few lines for the terminal: trials, front, where the report is, time split per trial."""
    ok = [o for o in result.outcomes if o.status == "ok"]
    lines = [f"{len(result.outcomes)} trials ({len(result.outcomes) - len(ok)} failed) in {result.seconds:.0f} s"]
    for o in result.outcomes:
        m = o.metrics
        state = (f"fid={m['fid']:.3g} mig={m['mig']:.3f}" if o.status == "ok" else f"FAILED: {o.error}")
        lines.append(
            f"  #{o.number} {o.params.get('variant')} lambda_mi={o.params.get('lambda_mi', 0):.3g} "
            f"lambda_tc={o.params.get('lambda_tc', 0):.3g}: {state}"
        )
    if ok:
        startup = statistics.median(o.metrics.get("startup_seconds", float("nan")) for o in ok)
        train = statistics.median(o.metrics.get("train_seconds", float("nan")) for o in ok)
        evaluate = statistics.median(o.metrics.get("eval_seconds", float("nan")) for o in ok)
        wall = statistics.median(o.metrics.get("time_total_s", float("nan")) for o in ok)
        lines.append(f"per trial (median): wall {wall:.1f} s = start-up {startup:.1f} s + "
                     f"training {train:.1f} s + objectives {evaluate:.1f} s + rest")
    lines.append(f"report: {result.report.index}")
    return "\n".join(lines)
