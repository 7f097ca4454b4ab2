"""Sweeps on the colour dataset and on a folder of images, each with its report: the data side of
a real study, end to end on a local Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from disentune.config import experiment_from_dict
from disentune.pipeline import run_sweep

pytestmark = pytest.mark.integration


def test_a_sweep_on_the_colour_dataset_trains_rgb_models_and_reports(ray_local, tmp_path):
    exp = experiment_from_dict({
        "name": "colour", "seed": 2,
        "data": {"dataset": "shapes3d_procedural", "resolution": 32, "train_size": 512},
        "train": {"epochs": 1, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 128, "mig_samples": 500, "suite": ["mig", "sap"],
                       "metric_params": {"mig": {"num_points": 500}, "sap": {"num_train": 300, "num_test": 150}}},
        "search": {"num_samples": 2, "sampler": "random"},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 6},
    })
    result = run_sweep(exp, out=tmp_path / "run")
    trials = pq.read_table(result.run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert trials["fid_extractor"].str.startswith("factornet-shapes3d_procedural-r32:").all()
    import disentune

    run = disentune.open_run(str(result.run_dir))
    model = run.model(0)
    assert model.image_shape == (3, 32, 32) and tuple(model.sample(2).shape) == (2, 3, 32, 32)
    assert set(run.evaluations["metric"]) == {"mig", "sap"} and len(run.evaluations) == 4
    assert (result.run_dir / "index.html").read_text().count("<figcaption>Latent traversal") >= 1


def _image_folder(root: Path, n: int = 96) -> Path:
    """PNG photos of coloured discs on a gradient, 40 x 48 (not square: they are centre-cropped)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = root / "images"
    (folder / "sub").mkdir(parents=True)
    yy, xx = np.mgrid[0:40, 0:48]
    for i in range(n):
        cy, cx, r = rng.uniform(10, 30), rng.uniform(14, 34), rng.uniform(4, 9)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image = np.stack([xx / 48 * 120 + 60] * 3, axis=-1)
        image[disc] = rng.uniform(80, 255, 3)
        Image.fromarray(image.astype(np.uint8)).save(folder / ("sub" if i % 3 == 0 else "") / f"img{i:03d}.png")
    return folder


def _inception_weights(path: Path) -> Path:
    """Random Inception-v3 weights in torchvision's layout (no download; FID values are arbitrary
    but follow the definition)."""
    import torch

    from disentune.metrics.inception import InceptionV3

    torch.manual_seed(0)
    state = InceptionV3(kind="torchvision").state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    torch.save(state, path)
    return path


def test_a_sweep_on_a_folder_of_images_uses_udr_and_inception_fid(ray_local, tmp_path):
    folder = _image_folder(tmp_path)
    weights = _inception_weights(tmp_path / "inception.pth")
    exp = experiment_from_dict({
        "name": "folder", "seed": 4,
        "data": {"dataset": "images", "path": str(folder), "resolution": 32},
        "train": {"epochs": 2, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 16, "inception_weights": str(weights), "suite": ["unsupervised"],
                       "metric_params": {"unsupervised": {"num_train": 64}, "udr": {"num_data_points": 64}}},
        "search": {"num_samples": 2, "replicates": 2, "sampler": "random"},
        "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 16, "latent_dim": 3},
    })
    result = run_sweep(exp, out=tmp_path / "run")
    trials = pq.read_table(result.run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "ok").all(), trials[["status", "error"]]
    assert {"fid", "udr"} <= set(trials.columns) and "mig" not in trials.columns  # fid and udr by default
    assert trials["udr"].between(0, 1).all() and (trials["replicates_ok"] == 2).all()
    assert trials["fid_extractor"].str.startswith("inception-v3-torchvision:").all()
    replicates = pq.read_table(result.run_dir / "replicates.parquet").to_pandas()
    assert len(replicates) == 4 and replicates["seed"].nunique() == 2
    evaluations = pq.read_table(result.run_dir / "evaluations.parquet").to_pandas()
    assert set(evaluations["suite_metric"]) == {"unsupervised"} and evaluations["trial_id"].nunique() == 4
    page = (result.run_dir / "index.html").read_text()
    assert "udr" in page and "(replicates " in page  # front points carry their replicate range
