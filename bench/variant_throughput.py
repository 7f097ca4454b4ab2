"""Training throughput of every variant, and the training loop's overhead against bare PyTorch.

    python bench/variant_throughput.py [--steps 20] [--threads 2] [--ray] [--dataset shapes3d_procedural]

Table 1: images/second of one training step (batch 64, real dSprites, or ``--dataset``'s images:
the colour dataset gives RGB) per variant at 32 and 64 pixels. Table 2: the same model and batch (beta_tcvae, 32 px) trained for the same images by
(a) a bare PyTorch loop, (b) the platform's loop in process (the in-trial path) and, with --ray,
(c) the platform's loop in a Ray Train worker; ratios are images/second against (a).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from disentune.config import experiment_from_dict
from disentune.data.dsprites import DSprites
from disentune.metrics.factor_net import ensure_factor_net
from disentune.models.base import Hyper
from disentune.registry import DATASETS, MODELS
from disentune.train.loop import TrialSpec, run_training
from disentune.train.session import LocalSession

BATCH = 64


def step_rate(variant: str, resolution: int, steps: int, dataset: str = "dsprites") -> float:
    data = DATASETS.get(dataset)(resolution=resolution)
    x = torch.from_numpy(data.images_at(np.random.default_rng(0).integers(0, data.num_images, BATCH)))
    hyper = Hyper(latent_dim=6, lambda_mi=0.5, lambda_tc=2.0, lr=1e-3, dataset_size=50_000)
    torch.manual_seed(0)
    model = MODELS.get(variant).build(data.image_shape, hyper)
    step = MODELS.get(variant).make_step(model, hyper)
    for _ in range(3):
        step(x)
    began = time.perf_counter()
    for _ in range(steps):
        step(x)
    return steps * BATCH / (time.perf_counter() - began)


def loop_overhead(images: int, use_ray: bool) -> list[tuple[str, float]]:
    data = DSprites(resolution=32)
    extractor = ensure_factor_net(data, "dsprites", 32)
    exp = experiment_from_dict({"name": "bench", "data": {"resolution": 32, "train_size": images},
                                "train": {"epochs": 1, "cpus_per_worker": torch.get_num_threads()},
                                "evaluation": {"fid_samples": 10, "mig_samples": 100}})
    params = {"variant": "beta_tcvae", "lambda_mi": 0.5, "lambda_tc": 2.0, "lr": 1e-3, "latent_dim": 6,
              "batch_size": BATCH, "seed": 0}
    spec = TrialSpec(experiment=exp, params=params, extractor_path=str(extractor))

    # (a) bare PyTorch: the same images in the same order, the same model and step
    index = np.sort(np.random.default_rng(0).choice(data.num_images, images, replace=False))
    x = torch.from_numpy(data.images_at(index, dtype=np.uint8))
    hyper = Hyper(latent_dim=6, lambda_mi=0.5, lambda_tc=2.0, lr=1e-3, dataset_size=images)
    torch.manual_seed(0)
    model = MODELS.get("beta_tcvae").build(data.image_shape, hyper)
    step = MODELS.get("beta_tcvae").make_step(model, hyper)
    order = torch.randperm(images)
    began = time.perf_counter()
    for b in range(images // BATCH):
        step(x[order[b * BATCH:(b + 1) * BATCH]].float())
    bare = (images // BATCH) * BATCH / (time.perf_counter() - began)
    rows = [("bare PyTorch loop", bare)]

    session = LocalSession()
    run_training(spec, session)
    last = session.reports[-1][0]
    rows.append(("platform loop, in process", last["images_seen"] / last["train_seconds"]))
    if use_ray:
        import ray

        from disentune.train.launch import make_trainer

        ray.init("local", num_cpus=os.cpu_count(), include_dashboard=False)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                result = make_trainer(spec, storage_path=tmp, name="bench", use_gpu=False).fit()
                m = result.metrics
                rows.append(("platform loop, Ray Train worker", m["images_seen"] / m["train_seconds"]))
        finally:
            ray.shutdown()
    return [(name, rate / bare) for name, rate in rows] + [("(bare images/s)", bare)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--dataset", default="dsprites", help="a procedural dataset (shapes3d_procedural: RGB)")
    parser.add_argument("--no-loop", action="store_true", help="only the per-variant table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {BATCH}, {args.dataset}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"\n{'variant':<15} {'img/s @32':>10} {'img/s @64':>10}")
    for variant in MODELS.names():
        rates = [step_rate(variant, r, args.steps, args.dataset) for r in (32, 64)]
        print(f"{variant:<15} {rates[0]:>10.0f} {rates[1]:>10.0f}")
    if args.no_loop:
        return
    print(f"\n{'loop (beta_tcvae, 32 px)':<34} {'ratio to bare':>14}")
    for name, value in loop_overhead(args.images, args.ray):
        print(f"{name:<34} {value:>14.3f}")


if __name__ == "__main__":
    main()
