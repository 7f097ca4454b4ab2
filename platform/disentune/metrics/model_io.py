"""A trained model's images and codes as numpy arrays: encode, sample, decode, code ranges.

Every metric, objective and detector reads a model through these, in batches on its device.
Shapes: images ``(n, C, R, R)`` float32 in [0, 1]; representations and codes ``(n, d)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
