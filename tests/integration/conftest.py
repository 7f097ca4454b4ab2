"""A tiny finished sweep shared by the evaluators' integration tests (metric suite, anomaly)."""

from __future__ import annotations

from pathlib import Path

import pytest

# every metric of the suite at a size that runs in seconds on 2 cores
SMALL_METRICS = {
    "mig": {"num_points": 1000},
    "dci": {"num_train": 400, "num_test": 200},
    "sap": {"num_train": 500, "num_test": 250},
    "modularity": {"num_points": 1000},
    "explicitness": {"num_train": 500, "num_test": 250},
    "factor_vae_score": {"num_train": 100, "num_eval": 50, "num_variance_estimate": 1000},
    "beta_vae_score": {"num_train": 100, "num_eval": 50},
    "fid": {"num_points": 300},
    "kid": {"num_points": 300, "num_subsets": 10, "subset_size": 100},
    "precision_recall": {"num_points": 300},
    "attribute_control": {"num_bases": 8, "num_steps": 5},
    "irs": {"num_train": 500},
    "unsupervised": {"num_train": 500},
    "udr": {"num_data_points": 300},
}


@pytest.fixture(scope="module")
def ray_local():
    """A private local Ray instance for one test module (never a stray cluster's address)."""
    import ray

    ray.init("local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, dsprites32) -> Path:
    """Two one-epoch trials (a VAE and a GAN) trained without hearts, evaluators left for later.

    ``run_sweep`` starts and stops its own local Ray, so modules with their own Ray fixture can
    still use this run.
    """
    from disentune.config import experiment_from_dict
    from disentune.pipeline import run_sweep

    exp = experiment_from_dict({
        "name": "evaltiny", "seed": 3,
        "data": {"resolution": 32, "train_size": 320, "exclude": [{"shape": ["heart"]}]},
        "train": {"epochs": 1, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 100, "mig_samples": 500, "run_suite": "never",
                       "metric_params": SMALL_METRICS},
        "anomaly": {"num_fit": 200, "num_test": 100},
        "search": {"num_samples": 2, "max_concurrent_trials": 2, "sampler": "grid"},
        "space": {"variant": {"choice": ["beta_tcvae", "infogan"]}, "batch_size": 32, "latent_dim": 4},
    })
    out = tmp_path_factory.mktemp("finished") / "run"
    result = run_sweep(exp, out=out, num_cpus=2)
    assert result.evaluation is None and result.anomaly is None
    assert sorted(o.params["variant"] for o in result.outcomes) == ["beta_tcvae", "infogan"]
    return out
