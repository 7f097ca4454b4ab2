"""Planning the metric suite over a run (no Ray): what is done is skipped, newest rows win."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pyarrow as pa
import pytest
from disentune.config import EvaluationConfig, experiment_from_dict
from disentune.errors import ConfigError, UserError
from disentune.evaluate import TABLE, check_metrics, plan, read_evaluations, run_config
from disentune.reports import schema
from disentune.reports.build import build_report, suite_rows
from disentune.reports.storage import append_table, write_table
from disentune.storage import write_bytes

from tests.unit.reports.synthetic import synthetic_trials


def _run(tmp_path, n: int = 6, **evaluation):
    exp = experiment_from_dict({"name": "planned", "evaluation": evaluation})
    write_bytes(str(tmp_path / "experiment.json"),
                json.dumps({"experiment": dataclasses.asdict(exp)}, default=list).encode())
    trials = synthetic_trials(n).to_pylist()
    for t in trials:
        t["checkpoint_uri"] = None if t["status"] != "ok" else f"{tmp_path}/ckpt/{t['trial_id']}"
    write_table(pa.Table.from_pylist(trials, schema=schema.TRIALS), str(tmp_path / "trials.parquet"))
    return tmp_path, [t for t in trials if t["status"] == "ok"]


def _rows(trial_id: str, suite_metric: str, metric: str, value: float, minute: int = 0) -> pa.Table:
    return pa.Table.from_pylist([{
        "run_id": "planned", "trial_number": int(trial_id[1:]), "replicate": 0, "trial_id": trial_id,
        "suite_metric": suite_metric, "metric": metric, "value": value, "params": "{}", "seed": 1,
        "seconds": 0.1, "created_at": dt.datetime(2026, 1, 1, 0, minute, tzinfo=dt.timezone.utc),
    }], schema=schema.EVALUATIONS)


def test_run_config_round_trips_the_evaluation_section(tmp_path):
    run, _ = _run(tmp_path, suite=["mig", "fid"], metric_params={"mig": {"num_points": 321}})
    setup = run_config(str(run))
    cfg = setup.evaluation
    assert (setup.data.dataset, setup.data.resolution, setup.run_id) == ("dsprites", 64, "planned")
    assert isinstance(cfg, EvaluationConfig) and cfg.suite == ("mig", "fid")
    assert cfg.metric_params == {"mig": {"num_points": 321}}


def test_plan_skips_failed_trials_and_finished_pairs(tmp_path):
    run, ok = _run(tmp_path, n=20, suite=["mig", "fid"], metric_params={"fid": {"num_points": 50}})
    jobs, skipped = plan(str(run))
    assert skipped == 0 and len(jobs) == 2 * len(ok) and len(ok) < 20  # one synthetic trial failed
    assert {j.models[0].trial_id for j in jobs} == {t["trial_id"] for t in ok}
    assert next(j for j in jobs if j.metric == "fid").params == {"num_points": 50}

    append_table(_rows(ok[0]["trial_id"], "mig", "mig", 0.5), str(run / TABLE))
    jobs, skipped = plan(str(run))
    assert skipped == 1 and len(jobs) == 2 * len(ok) - 1
    assert (ok[0]["trial_id"], "mig") not in {(j.models[0].trial_id, j.metric) for j in jobs}
    # --metrics narrows the plan
    jobs, _ = plan(str(run), ["fid"])
    assert {j.metric for j in jobs} == {"fid"}


def test_newest_row_wins_when_two_evaluations_raced(tmp_path):
    run, ok = _run(tmp_path, suite=["mig"])
    tid = ok[0]["trial_id"]
    append_table(_rows(tid, "mig", "mig", 0.1, minute=1), str(run / TABLE))
    append_table(_rows(tid, "mig", "mig", 0.7, minute=5), str(run / TABLE))
    append_table(_rows(ok[1]["trial_id"], "mig", "mig", 0.3, minute=2), str(run / TABLE))
    table = read_evaluations(str(run)).to_pylist()
    assert [(r["trial_id"], r["value"]) for r in table] == [(tid, 0.7), (ok[1]["trial_id"], 0.3)]


def test_report_shows_the_suite_table(tmp_path):
    run, ok = _run(tmp_path, suite=["mig"])
    append_table(_rows(ok[0]["trial_id"], "dci", "dci_completeness", 0.25), str(run / TABLE))
    rows, columns = suite_rows(read_evaluations(str(run)), synthetic_trials(6))
    assert columns == ["trial_number", "variant", "dci_completeness"] and rows[0]["dci_completeness"] == 0.25
    page = (build_report(str(run), traversals=False).index)
    html = open(page).read()
    assert 'id="evaluations"' in html and "dci_completeness" in html


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="nonsense.*choose from"):
        check_metrics(["mig", "nonsense"])
    with pytest.raises(UserError, match="not a disentune run"):
        plan(str(tmp_path))
    run, _ = _run(tmp_path)
    with pytest.raises(ConfigError, match="unknown metric 'bogus'"):
        plan(str(run), ["bogus"])
