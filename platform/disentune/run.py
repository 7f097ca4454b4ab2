"""A finished run as one object: its tables as DataFrames, its trained models, and the stages that
add to it (the metric suite, anomaly detection, the report). The CLI and notebooks share it.

>>> import disentune
>>> run = disentune.open_run("reports/quickstart")          # doctest: +SKIP
>>> run.trials[["trial_number", "lambda_tc", "fid", "mig"]]   # doctest: +SKIP
>>> model = run.model(run.front.trial_number.iloc[0])       # doctest: +SKIP

Everything is read from the run's URI (a local folder or ``s3://bucket/prefix``) when asked for,
so a Run opened before ``evaluate`` sees the new values afterwards.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from disentune.errors import UserError
from disentune.reports import schema
from disentune.reports.storage import read_dataset, read_table
from disentune.storage import exists, join, normalize, read_bytes

if TYPE_CHECKING:
    import torch
    from torch import nn

    from disentune.anomaly.runner import AnomalyResult
    from disentune.evaluate import EvaluationResult
    from disentune.pipeline import SweepResult
    from disentune.reports.build import ReportPaths


class Run:
    """The run at ``uri``; see :func:`open_run`."""

    def __init__(self, uri: str) -> None:
        self.uri = normalize(uri)
        self.sweep_result: SweepResult | None = None  # set by disentune.sweep

    def __repr__(self) -> str:
        return f"Run({self.uri!r})"

    # -- tables --------------------------------------------------------------------------------
    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial (``trials.parquet``), failed ones included, in trial order."""
        return read_table(join(self.uri, "trials.parquet")).to_pandas().sort_values("trial_number",
                                                                                    ignore_index=True)

    @property
    def pareto(self) -> pd.DataFrame:
        """Rank, front membership, hypervolume contribution and knee of every successful trial."""
        return read_table(join(self.uri, "pareto.parquet")).to_pandas()

    @property
    def front(self) -> pd.DataFrame:
        """The trials on the Pareto front (their ``trials`` rows, with rank, knee and
        hypervolume contribution), best FID first."""
        pareto = self.pareto
        on_front = pareto.loc[pareto["on_front"], ["trial_id", "rank", "knee", "hv_contribution"]]
        return (self.trials.merge(on_front, on="trial_id").sort_values("fid", ignore_index=True))

    @property
    def evaluations(self) -> pd.DataFrame:
        """The metric suite's values, newest per (trial, metric), long format."""
        from disentune.evaluate import read_evaluations

        return read_evaluations(self.uri).to_pandas()

    @property
    def anomaly(self) -> pd.DataFrame:
        """Anomaly metrics per (trial, detector, feature space, benchmark, metric)."""
        from disentune.anomaly.runner import METRICS_TABLE

        return read_dataset(join(self.uri, METRICS_TABLE), schema.ANOMALY_METRICS).to_pandas()

    @property
    def config(self) -> dict[str, Any]:
        """The validated experiment config and software versions (``experiment.json``)."""
        return json.loads(read_bytes(join(self.uri, "experiment.json")))

    # -- models --------------------------------------------------------------------------------
    def model(self, trial: int | str, device: str | torch.device = "cpu") -> nn.Module:
        """The trained module of a trial (its number or id), in eval mode, ready to ``encode``
        images ``(n, C, R, R)`` in [0, 1] and ``sample(n)``; loaded from its final checkpoint."""
        from disentune.checkpoints import load_model_uri

        rows = self.trials
        match = rows[(rows["trial_id"] == trial)] if isinstance(trial, str) else rows[rows["trial_number"] == int(trial)]
        if match.empty:
            raise UserError(f"{self.uri}: no trial {trial!r}; it has {', '.join(map(str, rows['trial_number']))}")
        uri = match["checkpoint_uri"].iloc[0]
        if uri is None or (isinstance(uri, float) and pd.isna(uri)):
            raise UserError(f"{self.uri}: trial {trial!r} has no checkpoint ({match['error'].iloc[0]})")
        model, _ = load_model_uri(uri, device)
        return model

    # -- stages --------------------------------------------------------------------------------
    def evaluate(self, metrics: Sequence[str] | None = None, *, address: str = "local") -> EvaluationResult:
        """Run the missing (trial, metric) pairs of the suite (default: the run's own suite)."""
        from disentune.evaluate import check_metrics, evaluate_run

        return evaluate_run(self.uri, metrics=check_metrics(metrics) if metrics else None, address=address)

    def detect(self, detectors: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None, *,
               front_only: bool = False, address: str = "local") -> AnomalyResult:
        """Score the trials with the anomaly detectors on the benchmarks (defaults: the run's)."""
        from disentune.anomaly.runner import check_request, detect_run

        check_request(detectors, benchmarks)
        return detect_run(self.uri, detectors=detectors, benchmarks=benchmarks, front_only=front_only,
                          address=address)

    def report(self) -> ReportPaths:
        """Rebuild ``pareto.parquet``, the figures and ``index.html``; returns their locations."""
        from disentune.reports.build import build_report

        return build_report(self.uri)


def open_run(uri: str) -> Run:
    """The finished run at a local path or ``s3://`` URI (one line if there is none)."""
    run = Run(uri)
    if not exists(join(run.uri, "trials.parquet")):
        raise UserError(f"{run.uri}: not a disentune run (no trials.parquet)")
    return run
