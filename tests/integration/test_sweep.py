"""A tiny sweep on a real local Ray: Tune + Optuna + nested Ray Train, then the report."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from disentune.config import experiment_from_dict
from disentune.pipeline import run_sweep

pytestmark = pytest.mark.integration


def tiny(launcher: str):
    return experiment_from_dict({
        "name": "tiny", "seed": 7,
        "data": {"resolution": 32, "train_size": 320},
        "train": {"epochs": 2, "launcher": launcher},
        "evaluation": {"fid_samples": 100, "mig_samples": 500, "run_suite": "never"},
        "search": {"num_samples": 2, "max_concurrent_trials": 2},
        "space": {"lambda_mi": {"uniform": [0.0, 1.0]}, "lambda_tc": {"uniform": [0.0, 8.0]},
                  "batch_size": 32, "latent_dim": 4},
    })


@pytest.fixture(scope="module")
def runs(ray_local, tmp_path_factory, dsprites32):
    """The same tiny sweep run by each launcher: in the Tune trial, and as a Ray Train worker group."""
    root = tmp_path_factory.mktemp("sweeps")
    return {launcher: run_sweep(tiny(launcher), out=root / launcher).run_dir
            for launcher in ("in_trial", "ray_train")}


def test_both_launchers_give_the_same_trials_for_the_same_seed(runs):
    a = pq.read_table(runs["in_trial"] / "trials.parquet").to_pandas().sort_values("trial_number")
    b = pq.read_table(runs["ray_train"] / "trials.parquet").to_pandas().sort_values("trial_number")
    np.testing.assert_array_equal(a["lambda_tc"].to_numpy(), b["lambda_tc"].to_numpy())
    np.testing.assert_allclose(a["fid"].to_numpy(), b["fid"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(a["mig"].to_numpy(), b["mig"].to_numpy(), rtol=1e-6)
    # the worker group pays Ray Train's start-up; the in-trial path does not
    assert b["startup_seconds"].min() > a["startup_seconds"].max()


@pytest.mark.parametrize("launcher", ["in_trial", "ray_train"])
def test_tiny_sweep_writes_tables_figure_and_page(runs, launcher):
    run = Path(runs[launcher])
    trials = pq.read_table(run / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert trials["trial_id"].is_unique
    assert trials["lambda_mi"].between(0, 1).all() and trials["lambda_tc"].between(0, 8).all()
    assert trials["lambda_tc"].nunique() == 2  # Optuna proposed two different points
    assert (trials["seed"] == 7).all() and (trials["images_seen"] == 2 * 320).all()
    assert np.isfinite(trials["fid"]).all() and trials["mig"].between(0, 1).all()
    assert trials["fid_extractor"].str.startswith("factornet-dsprites-r32:").all()
    assert (trials["startup_seconds"] >= 0).all() and (trials["train_seconds"] > 0).all()
    for uri in trials["checkpoint_uri"]:
        assert (Path(uri) / "state.pt").exists()

    pareto = pq.read_table(run / "pareto.parquet")
    meta = pareto.schema.metadata
    assert meta[b"disentune.schema_version"] == b"1"
    pareto = pareto.to_pandas()
    assert set(pareto["trial_id"]) == set(trials["trial_id"])
    assert pareto["on_front"].any() and (pareto["rank"] >= 0).all()
    assert pareto["reference_fid"].nunique() == 1
    assert pareto["reference_fid"].iloc[0] > trials["fid"].max()

    png = (run / "figures" / "pareto.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    page = (run / "index.html").read_text()
    assert "data:image/png;base64," in page
    for trial_number in trials["trial_number"]:
        assert f'<td class="num">{trial_number}</td>' in page
    assert page.count("<figcaption>Latent traversal") == int(pareto["on_front"].sum())
    assert (run / "optuna.journal").stat().st_size > 0
    assert "Optuna best_trials</b>: agrees" in page
    curves = pq.read_table(run / "curves.parquet").to_pandas()
    assert set(curves["epoch"]) == {1, 2} and "loss_total" in set(curves["metric"])


def test_a_reused_trial_process_gives_the_same_metrics_as_a_fresh_one(ray_local, tmp_path, dsprites32):
    """In-trial sweeps reuse the trial's process (no second import of torch and friends); the
    trials of one config and seed, one after another in that process, must not differ."""
    exp = experiment_from_dict({
        "name": "reuse", "seed": 5,
        "data": {"resolution": 32, "train_size": 256},
        "train": {"epochs": 1, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 100, "mig_samples": 300, "run_suite": "never"},
        "search": {"sampler": "random", "num_samples": 4, "max_concurrent_trials": 1},
        "space": {"lambda_tc": {"choice": [2.0, 3.0]}, "batch_size": 32, "latent_dim": 3},
    })
    result = run_sweep(exp, out=tmp_path / "run")
    assert [o.status for o in result.outcomes] == ["ok"] * 4
    assert len({o.metrics["pid"] for o in result.outcomes}) == 1  # one process ran all four
    first, *later = result.outcomes
    again = [o for o in later if o.params["lambda_tc"] == first.params["lambda_tc"]]
    assert again, "the seeded sampler no longer repeats the first config: pick another seed"
    for o in again:
        assert (o.metrics["fid"], o.metrics["mig"], o.metrics["loss_total"]) == (
            first.metrics["fid"], first.metrics["mig"], first.metrics["loss_total"])
