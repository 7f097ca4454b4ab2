"""Data for ``subset_scan_speed.py``: background and test features ``(n, J)`` of each kind.

- synthetic: standard normal activations (untied: point p-values) and the same clipped at 0
  (ReLU: about half of every row ties the background's zeros);
- binary pixels: procedural dSprites images (values in {0, 1}, about 4 % ones), flattened;
- activations of a trained model: the default layer (``anomaly.features.default_layer``) of a tiny
  beta-TCVAE trained here for one epoch on procedural dSprites at 32 px (``train.loop.run_training``
  with a ``LocalSession``), or of the first finished trial of ``--run RUN_DIR``.

Images are drawn uniformly from the whole factor grid; the first ``n_background`` rows are the
clean background, the rest the test samples.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic(rows: int, nodes: int, n_background: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"normal": (background, test), "relu": ...}`` of ``nodes`` standard-normal features."""
    rng = np.random.default_rng(seed)
    normal = (rng.normal(size=(n_background, nodes)), rng.normal(size=(rows, nodes)))
    return {"normal": normal, "relu": tuple(np.maximum(a, 0.0) for a in normal)}


def _dsprites(resolution: int):
    from disentune.data.dsprites import DSprites

    data = DSprites(resolution=resolution)
    data.render()  # into $DISENTUNE_CACHE, once
    return data


def _images(data, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return data.images_at(np.sort(rng.choice(data.num_images, count, replace=False)))


def binary_pixels(rows: int, n_background: int, resolution: int = 64, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """dSprites pixels ``(n, resolution ** 2)``: 4,096 nodes at 64 px."""
    pixels = _images(_dsprites(resolution), n_background + rows, seed).reshape(n_background + rows, -1)
    pixels = pixels.astype(np.float64)
    return pixels[:n_background], pixels[n_background:]


def train_tiny_model(train_size: int = 5000, seed: int = 0) -> torch.nn.Module:
    """A beta-TCVAE trained for one epoch on ``train_size`` dSprites images at 32 px (CPU, ~1 min)."""
    from disentune.checkpoints import load_model
    from disentune.config import experiment_from_dict
    from disentune.metrics.factor_net import ensure_factor_net
    from disentune.train.loop import TrialSpec, run_training
    from disentune.train.session import LocalSession

    exp = experiment_from_dict({
        "name": "scan-bench", "seed": seed,
        "data": {"resolution": 32, "train_size": train_size},
        "train": {"epochs": 1, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 100, "mig_samples": 500},
    })
    extractor = ensure_factor_net(_dsprites(32), "dsprites", 32, seed=0)
    params = {"variant": "beta_tcvae", "lambda_mi": 0.0, "lambda_tc": 1.0, "lr": 1e-3,
              "latent_dim": 6, "batch_size": 64, "seed": seed}
    root = Path(tempfile.mkdtemp(prefix="scan-bench-"))
    session = LocalSession(root)
    run_training(TrialSpec(experiment=exp, params=params, extractor_path=str(extractor)), session)
    model, _ = load_model(session.reports[-1][1])
    return model


def run_model(run_dir: str) -> torch.nn.Module:
    """The model of the first trial of a finished run that has a checkpoint."""
    from disentune import open_run

    run = open_run(run_dir)
    trials = run.trials
    done = trials[trials["checkpoint_uri"].notna()]
    if done.empty:
        raise SystemExit(f"{run_dir}: no trial with a checkpoint")
    return run.model(int(done["trial_number"].iloc[0]))


def model_activations(rows: int, n_background: int, run_dir: str | None = None,
                      seed: int = 2) -> tuple[tuple[np.ndarray, np.ndarray], str, float]:
    """``((background, test), feature space, seconds to get the model)``: the model's default
    layer on dSprites 32 px images (ReLU outputs of the last convolution: many exact zeros)."""
    from disentune.anomaly.features import default_layer, features

    began = time.perf_counter()
    model = run_model(run_dir) if run_dir else train_tiny_model()
    seconds = time.perf_counter() - began
    space = f"activation:{default_layer(model)}"
    images = _images(_dsprites(32), n_background + rows, seed)
    acts = features(model, images, space, torch.device("cpu"))
    return (acts[:n_background], acts[n_background:]), space, seconds
