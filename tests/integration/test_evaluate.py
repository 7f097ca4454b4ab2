"""The metric suite over a finished tiny sweep: parallel Ray tasks, an idempotent long table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from disentune.cli import main
from disentune.config import DEFAULT_SUITE
from disentune.evaluate import TABLE, evaluate_run, plan, read_evaluations
from disentune.registry import METRICS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(finished_run: Path) -> Path:
    assert not (finished_run / TABLE).exists()
    return finished_run


def test_every_registered_metric_is_in_the_default_suite():
    assert set(DEFAULT_SUITE) == set(METRICS.names())


def test_suite_runs_once_per_trial_and_metric_and_resumes_what_is_missing(run):
    first = evaluate_run(str(run))
    assert not first.failed, first.summary()
    # one task per (model, metric), and one for udr across both models (they share a latent size)
    assert len(first.done) == 2 * len(DEFAULT_SUITE) - 1 and first.skipped == 0
    table = read_evaluations(str(run)).to_pandas()
    expected = {v for name in DEFAULT_SUITE for v in METRICS.get(name).values}
    assert set(table["metric"]) == expected
    counts = table.groupby(["trial_id", "metric"]).size()
    assert (counts == 1).all() and len(counts) == 2 * len(expected)
    assert table["value"].notna().all() and np.isfinite(table["value"]).all()
    assert (table["seconds"] > 0).all()

    # parameters travel with every value: sample sizes, the extractor, library versions
    params = {r.metric: json.loads(r.params) for r in table.itertuples()}
    assert params["mig"]["num_points"] == 1000 and params["mig"]["num_bins"] == 20
    assert params["fid"]["extractor"].startswith("factornet-dsprites-r32:")
    assert params["kid"]["num_subsets"] == 10
    assert all("sklearn_version" in p for p in params.values())
    # the same trial seed and metric give the same seed; metrics get distinct ones
    seeds = table.groupby("suite_metric")["seed"].nunique()
    assert (seeds == 1).all() and table.drop_duplicates("suite_metric")["seed"].is_unique

    # disentanglement scores lie in their ranges
    bounded = table[table["metric"].isin(["mig", "sap", "modularity", "dci_disentanglement",
                                           "factor_vae_score", "beta_vae_score", "precision", "recall"])]
    assert bounded["value"].between(0, 1).all()

    # a second run finds everything done and adds no row
    parts = sorted((run / TABLE).glob("part-*.parquet"))
    again = evaluate_run(str(run))
    assert not again.done and again.skipped == 2 * len(DEFAULT_SUITE)
    assert sorted((run / TABLE).glob("part-*.parquet")) == parts

    # an interrupted evaluation (some parts never written) is completed, not duplicated
    lost = {p for p in parts if pq.read_table(p)["suite_metric"][0].as_py() == "sap"} | set(parts[:2])
    for p in lost:
        p.unlink()
    jobs, _ = plan(str(run))
    assert len(jobs) == len(lost)
    resumed = evaluate_run(str(run))
    assert len(resumed.done) == len(jobs) and not resumed.failed
    after = read_evaluations(str(run)).to_pandas()
    assert (after.groupby(["trial_id", "metric"]).size() == 1).all()
    assert len(after) == len(table)


def test_cli_refuses_unknown_metric_and_missing_run(run, tmp_path, capsys):
    assert main(["evaluate", str(run), "--metrics", "mig,nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nonsense" in err and "mig" in err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "not a disentune run" in capsys.readouterr().err


def test_cli_runs_a_chosen_metric_and_is_idempotent(run, capsys):
    assert main(["evaluate", str(run), "--metrics", "mig"]) == 0
    assert "already done" in capsys.readouterr().out
