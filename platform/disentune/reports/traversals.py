"""Latent traversals: vary one latent (or code) at a time around an encoded real image and decode.

As disentanglement_lib's visualiser does, the base code is the representation of a real image of
the run's dataset (the first of a fixed, seeded draw), not the zero code: a row then shows what
that one dimension does to a real scene. Row ``i`` sets dimension ``i`` to each value of the
model's ``traversal_range`` (the prior's typical region) with the others at the base. Rows are
ordered by each dimension's KL to the prior, averaged over ``num_images`` images
(``0.5 (mu^2 + exp(logvar) - 1 - logvar)``; for models without a Gaussian posterior, the variance
of the representation over those images): informative dimensions first. A dimension whose KL (or
variance) is under ``collapsed_below`` (0.01, the active-units threshold of Burda et al. 2016) is
marked collapsed: it carries no information and its row does nothing.

:func:`traversal_data` computes the data object; :func:`draw_traversal` (PNG, in plots.py) and
:func:`traversal_gif` (an animated GIF, one frame per traversal value, every row at once) draw it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from disentune.reports.plots import draw_traversal

COLLAPSED_BELOW = 0.01


@dataclass(frozen=True)
class TraversalData:
    """``images (d, steps, C, H, W)`` in [0, 1], rows in ``order`` of the representation's
    dimensions; ``activity (d,)`` the KL (or variance) of each row's dimension; ``collapsed (d,)``."""

    images: np.ndarray
    values: np.ndarray
    order: np.ndarray
    activity: np.ndarray
    collapsed: np.ndarray
    activity_name: str  # "KL" or "variance"
    title: str

    @property
    def row_labels(self) -> list[str]:
        return [f"z{j} {self.activity_name} {a:.2g}" + (" collapsed" if c else "")
                for j, a, c in zip(self.order, self.activity, self.collapsed)]


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


@torch.no_grad()
def latent_activity(model: nn.Module, images: np.ndarray) -> tuple[np.ndarray, str]:
    """Per representation dimension: the mean KL to the prior (models with a Gaussian posterior)
    or the variance of the representation over ``images (n, C, H, W)``."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    posterior = getattr(model, "posterior", None)
    if posterior is not None:
        mu, logvar = posterior(x)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)
        return kl.mean(dim=0).double().numpy(), "KL"
    return model.encode(x).var(dim=0).double().numpy(), "variance"


def traversal_data(model: nn.Module, images: np.ndarray, title: str, values: np.ndarray | None = None,
                   collapsed_below: float = COLLAPSED_BELOW) -> TraversalData:
    """The traversal of ``model`` around the code of ``images[0]``, rows ordered by activity over
    ``images (n, C, H, W)`` (see the module docstring)."""
    model.eval()
    values = np.linspace(*model.traversal_range, 7) if values is None else np.asarray(values)
    activity, name = latent_activity(model, images)
    order = np.argsort(-activity, kind="stable")
    base = model.encode(torch.from_numpy(np.ascontiguousarray(images[:1], dtype=np.float32)))[0].cpu().numpy()
    grid = traversal_images(model, values, base)[order]
    return TraversalData(grid, values, order, activity[order], activity[order] < collapsed_below, name, title)


def traversal_gif(data: TraversalData, scale: int = 2, frame_ms: int = 180) -> bytes:
    """An animated GIF: frame ``k`` shows every row (top to bottom, in ``data``'s order) at value
    ``k``, there and back; images upscaled ``scale`` times (nearest), 2 px gaps."""
    from PIL import Image

    d, steps, c, h, w = data.images.shape
    pad = 2
    frames = []
    for k in [*range(steps), *range(steps - 2, 0, -1)]:
        canvas = np.full((d * (h + pad) + pad, w + 2 * pad, 3), 255, dtype=np.uint8)
        for i in range(d):
            tile = np.moveaxis(data.images[i, k], 0, -1)
            tile = np.repeat(tile, 3, axis=-1) if c == 1 else tile
            y = pad + i * (h + pad)
            canvas[y : y + h, pad : pad + w] = np.clip(tile * 255 + 0.5, 0, 255).astype(np.uint8)
            if data.collapsed[i]:  # a red bar beside a collapsed latent's row
                canvas[y : y + h, :pad] = (200, 30, 30)
        frames.append(Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale),
                                                     Image.NEAREST))
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return out.getvalue()


def run_images(data_config: dict | None, n: int = 200, seed: int = 0) -> np.ndarray | None:
    """``n`` images of a run's dataset (its stored ``data`` section), a fixed seeded draw; None if
    the dataset cannot be opened here (then the traversal starts from the zero code)."""
    from disentune.config import data_from_dict
    from disentune.data.open import open_dataset
    from disentune.errors import UserError

    if not data_config:
        return None
    try:
        data = open_dataset(data_from_dict(data_config))
    except (UserError, OSError):
        return None
    index = np.random.default_rng(seed).integers(0, data.num_images, n)
    return data.images_at(index)


def traversal_figures(checkpoint_uri: str, title: str, images: np.ndarray | None) -> tuple[bytes, bytes]:
    """Load a checkpoint (local or s3://) and draw its traversal: ``(png, gif)``."""
    from disentune.checkpoints import load_model_uri

    model, _ = load_model_uri(checkpoint_uri)
    if images is None:  # no data to encode: the zero code, every dimension shown in order
        values = np.linspace(*model.traversal_range, 7)
        d = model.representation_dim
        data = TraversalData(traversal_images(model, values), values, np.arange(d), np.full(d, np.nan),
                             np.zeros(d, dtype=bool), "KL", title)
    else:
        data = traversal_data(model, images, title)
    return draw_traversal(data.images, data.values, title, data.row_labels), traversal_gif(data)
