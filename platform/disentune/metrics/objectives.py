"""The two search objectives of a trained model, computed at the end of a trial.

``mig`` reads the mean representation of ``mig_samples`` images with uniformly drawn factors;
``fid`` compares ``fid_samples`` real images against as many samples from the model, both through
the dataset-factor extractor. Randomness comes from ``seed`` only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from disentune.config import EvaluationConfig
from disentune.data.ground_truth import GroundTruthData
from disentune.metrics.factor_net import Extractor
from disentune.metrics.fid import compute_fid
from disentune.metrics.mig import compute_mig


@torch.no_grad()
def encode_images(model: nn.Module, images: np.ndarray, device: torch.device, batch: int = 1000) -> np.ndarray:
    """Mean representation ``(n, d)`` of images ``(n, C, R, R)``."""
    model.eval()
    out = [
        model.encode(torch.from_numpy(images[i : i + batch]).to(device)).float().cpu()
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out).numpy()


@torch.no_grad()
def sample_images(model: nn.Module, n: int, seed: int, device: torch.device, batch: int = 1000) -> np.ndarray:
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = [model.sample(min(batch, n - i), generator=gen).float().cpu() for i in range(0, n, batch)]
    return torch.cat(out).numpy()


@torch.no_grad()
def decode_codes(model: nn.Module, codes: np.ndarray, device: torch.device, batch: int = 1000) -> np.ndarray:
    """Images ``(n, C, R, R)`` in [0, 1] that ``model`` decodes from codes ``(n, d)``."""
    model.eval()
    out = [model.decode(torch.from_numpy(np.ascontiguousarray(codes[i : i + batch])).float().to(device)).float().cpu()
           for i in range(0, len(codes), batch)]
    return torch.cat(out).numpy()


def code_ranges(model: nn.Module) -> np.ndarray:
    """``(d, 2)``: each code's typical range (the model's ``traversal_range``)."""
    low, high = model.traversal_range
    return np.tile([[low, high]], (model.representation_dim, 1)).astype(np.float64)


def search_objectives(
    model: nn.Module,
    data: GroundTruthData,
    extractor: Extractor,
    cfg: EvaluationConfig,
    *,
    seed: int,
    device: torch.device,
) -> dict[str, float | str]:
    """``{"fid", "mig", "fid_extractor"}`` of ``model`` on ``data``."""
    rng = np.random.default_rng(seed)
    classes = data.sample_factors(cfg.mig_samples, rng)
    mig = compute_mig(encode_images(model, data.images(classes), device), classes, num_bins=cfg.mig_bins)
    real = data.images(data.sample_factors(cfg.fid_samples, rng))
    fake = sample_images(model, cfg.fid_samples, seed, device)
    fid = compute_fid(extractor(real), extractor(fake), extractor=extractor.name)
    return {"fid": fid["fid"], "mig": mig["mig"], "fid_extractor": extractor.name}
