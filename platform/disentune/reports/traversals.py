"""Latent traversals: vary one latent (or code) at a time around a base code and decode.

Works for any registered model with ``decode(codes)``: one row per dimension of its
representation, over the model's ``traversal_range`` (the prior's typical region); the base code
is zeros, so a row shows what that one dimension controls on its own.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from disentune.reports.plots import draw_traversal


@torch.no_grad()
def traversal_images(model: nn.Module, values: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """``(d, steps, C, H, W)``: row ``i`` sets latent ``i`` to each of ``values``, others at ``base``."""
    d = model.representation_dim
    base = np.zeros(d, dtype=np.float32) if base is None else np.asarray(base, dtype=np.float32)
    codes = np.repeat(np.repeat(base[None, None, :], d, axis=0), len(values), axis=1)  # (d, steps, d)
    codes[np.arange(d), :, np.arange(d)] = values.astype(np.float32)
    device = next(model.parameters()).device
    images = model.decode(torch.from_numpy(codes.reshape(-1, d)).to(device)).float().cpu().numpy()
    return images.reshape(d, len(values), *images.shape[1:])


def traversal_png(checkpoint_uri: str, title: str, values: np.ndarray | None = None) -> bytes:
    """Load a checkpoint (local or s3://) and draw its traversal grid."""
    from disentune.checkpoints import load_model_uri

    model, _ = load_model_uri(checkpoint_uri)
    values = np.linspace(*model.traversal_range, 7) if values is None else values
    return draw_traversal(traversal_images(model, values), values, title)
