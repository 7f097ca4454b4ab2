import time

import numpy as np
import pyarrow as pa
import pytest

from disentune.reports import schema
from disentune.reports.build import build_report, pareto_table
from disentune.reports.plots import curves_data, heatmap_data, hypervolume_data
from disentune.reports.storage import append_table, read_table, write_table

from .synthetic import synthetic_curves, synthetic_trials


def test_heatmap_bins_hold_the_mean_of_their_trials():
    rows = synthetic_trials(4).to_pylist()
    for r, (mi, tc, fid) in zip(rows, [(0.0, 0.0, 10.0), (0.1, 0.2, 20.0), (1.0, 10.0, 30.0), (0.9, 9.9, 50.0)]):
        r.update(lambda_mi=mi, lambda_tc=tc, fid=fid, mig=fid / 100, status="ok")
    data = heatmap_data(pa.Table.from_pylist(rows, schema=schema.TRIALS), bins=2)
    np.testing.assert_allclose(data.grids["fid"], [[15.0, np.nan], [np.nan, 40.0]])
    assert data.counts.sum() == 4


def test_hypervolume_and_curves_data():
    trials = synthetic_trials(20)
    pareto = pareto_table(trials)
    hv = hypervolume_data(pareto)
    assert np.all(np.diff(hv.hypervolume) >= 0)
    curves = curves_data(synthetic_curves(trials), trials)
    assert len(curves.series) == 20
    x, y = next(iter(curves.series.values()))
    np.testing.assert_array_equal(x, [1, 2, 3])


@pytest.fixture()
def synthetic_run(tmp_path):
    run = tmp_path / "synthetic"
    trials = synthetic_trials(200, hostile="<script>window.pwned=1</script><b>bold</b>")
    write_table(trials, str(run / "trials.parquet"))
    write_table(synthetic_curves(trials), str(run / "curves.parquet"))
    return run


def test_report_of_200_trials_is_built_fast_and_complete(synthetic_run):
    began = time.perf_counter()
    paths = build_report(str(synthetic_run))
    seconds = time.perf_counter() - began
    assert seconds < 30  # bench/report_build.py measures it; the target there is 10 s
    page = (synthetic_run / "index.html").read_text()
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert page.count("data:image/png;base64,") == 4  # pareto, hypervolume, heatmaps, curves
    for name in ("pareto", "hypervolume", "heatmaps", "curves"):
        assert (synthetic_run / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    pareto = read_table(paths.pareto).to_pandas()
    assert len(pareto) == sum(1 for s in read_table(paths.trials)["status"].to_pylist() if s == "ok")
    assert pareto["knee"].sum() == 1 and pareto.loc[pareto["knee"], "on_front"].all()
    assert paths.front == sorted(pareto.loc[pareto["on_front"], "trial_number"])


def test_anomaly_results_add_their_figure(synthetic_run):
    trials = read_table(str(synthetic_run / "trials.parquet"))
    ok = [r for r in trials.to_pylist() if r["status"] == "ok"][:5]
    append_table(pa.Table.from_pylist([
        {"trial_id": r["trial_id"], "trial_number": r["trial_number"], "replicate": 0, "detector": "knn",
         "feature_space": "latent", "benchmark": "b", "metric": "auroc", "value": 0.7, "n_normal": 1,
         "n_anomalous": 1, "seed": 0, "fit_seconds": 0.0, "score_seconds": 0.0} for r in ok],
        schema=schema.ANOMALY_METRICS), str(synthetic_run / "anomaly_metrics.parquet"))
    paths = build_report(str(synthetic_run))
    assert "anomaly_detector_objectives" in paths.figures
    assert (synthetic_run / "figures" / "anomaly_detector_objectives.parquet").exists()
    assert "Anomaly AUROC per detector against fid and mig" in (synthetic_run / "index.html").read_text()
