"""The example plugin (examples/plugin), pip-installed beside disentune, swept end to end: its
model trains under Ray Train, its metric runs in the suite, the report shows the trials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """``pip install examples/plugin`` into a folder the tests put on the path: the venv itself
    stays as it was for every other test."""
    import shutil

    root = tmp_path_factory.mktemp("plugin")
    source = root / "source"  # a copy, so the build leaves nothing in the repository
    shutil.copytree(EXAMPLE, source)
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, timeout=300)
    return site


def cli(site: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "disentune", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(site)})


def test_the_installed_plugin_is_listed_with_its_origin(plugin_site):
    proc = cli(plugin_site, "plugins")
    assert proc.returncode == 0, proc.stderr
    rows = {tuple(line.split()[:2]): line for line in proc.stdout.splitlines()}
    origin = "disentune-plugin-example 0.1.0 (entry point disentune.models: sigma_vae = "
    assert origin in rows[("variant", "sigma_vae")]
    assert "disentune.metrics: active_units = disentune_plugin_example.active_units:METRIC" in rows[("metric", "active_units")]
    assert rows[("variant", "beta_vae")].split()[-1] == "built-in"


def test_a_sweep_trains_and_evaluates_the_plugin_model_like_a_built_in(plugin_site, tmp_path, dsprites32):
    space = tmp_path / "plugin.yaml"
    space.write_text(
        "name: plugin\nseed: 4\ndata: {resolution: 32, train_size: 256}\n"
        "train: {epochs: 2, launcher: ray_train}\n"
        "evaluation: {fid_samples: 64, mig_samples: 300, suite: [active_units, mig],\n"
        "             metric_params: {active_units: {num_points: 300}, mig: {num_points: 300}}}\n"
        "search: {num_samples: 2, max_concurrent_trials: 1, sampler: random}\n"
        "space: {variant: sigma_vae, lambda_tc: {uniform: [0.0, 4.0]}, batch_size: 32, latent_dim: 4}\n")
    out = tmp_path / "run"
    proc = cli(plugin_site, "sweep", str(space), "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = pq.read_table(out / "trials.parquet").to_pandas()
    assert (trials["variant"] == "sigma_vae").all() and (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert (trials["startup_seconds"] > 0).all()  # a Ray Train worker group ran each trial
    curves = pq.read_table(out / "curves.parquet").to_pandas()
    assert "loss_log_sigma" in set(curves["metric"])  # the plugin's own loss term
    evaluations = pq.read_table(out / "evaluations.parquet").to_pandas()
    assert {"active_units", "active_fraction", "mig"} <= set(evaluations["metric"])
    active = evaluations.loc[evaluations["metric"] == "active_units", "value"]
    assert active.between(0, 4).all() and len(active) == 2
    page = (out / "index.html").read_text()
    assert page.count("sigma_vae") >= 2 and "active_units" in page
