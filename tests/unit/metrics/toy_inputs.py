"""Tiny models and image data without factors, to feed the suite's new kinds in tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from disentune.data.ground_truth import ImageData
from disentune.metrics.suite import ModelInputs


class PixelImages(ImageData):
    """``num_images`` random 1 x 4 x 4 images in [0, 1], no factors (like an image collection)."""

    def __init__(self, num_images: int = 500, seed: int = 0) -> None:
        self.pixels = np.random.default_rng(seed).random((num_images, 1, 4, 4)).astype(np.float32)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 4, 4)

    @property
    def num_images(self) -> int:
        return len(self.pixels)

    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        return self.pixels[np.asarray(index, dtype=np.int64)].astype(dtype)


class PixelEncoder(nn.Module):
    """A Gaussian 'encoder': the mean is pixels ``columns`` times ``scale``, the log-variance
    ``logvar`` (a constant per latent); ``gaussian=False`` has only ``encode`` (as a GAN's Q)."""

    def __init__(self, columns: list[int], scale: float = 1.0, logvar: list[float] | None = None) -> None:
        super().__init__()
        self.columns, self.scale = columns, scale
        self.logvar = torch.tensor(logvar if logvar is not None else [0.0] * len(columns))
        self.dummy = nn.Parameter(torch.zeros(()))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = x.reshape(len(x), -1)[:, self.columns] * self.scale
        return mu, self.logvar.expand_as(mu)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]


class MeanOnly(nn.Module):
    def __init__(self, columns: list[int]) -> None:
        super().__init__()
        self.columns = columns
        self.dummy = nn.Parameter(torch.zeros(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)[:, self.columns]


def inputs(model: nn.Module, data: ImageData) -> ModelInputs:
    """A :class:`ModelInputs` without feature networks (the new kinds read none)."""
    return ModelInputs(model, data, None, None, torch.device("cpu"))  # type: ignore[arg-type]
