"""Colour and noisy dSprites, as disentanglement_lib defines them, composed from the dSprites cache.

Both are the dSprites grid of :mod:`disentune.data.dsprites` (same five factors, same strides,
same binary sprite, same bit-packed cache) with three channels; what they add is a nuisance
that is *not* a factor:

* :class:`ColorDSprites` (Locatello et al. 2019): the sprite takes one colour per image, each
  channel drawn uniformly from [0.5, 1], on a black background:
  ``x[c] = sprite * colour[c]``.
* :class:`NoisyDSprites`: the sprite is white on a background of uniform noise drawn per pixel
  per channel: ``x[c] = min(sprite + noise[c], 1)``, so sprite pixels are exactly 1.

disentanglement_lib redraws colour and noise at every sampling; here they are a pure function of
the image index (:func:`disentune.data.procedural.index_bytes`; see that module for why), drawn
on the 8-bit grid: a colour channel is ``(128 + b // 2) / 255`` for a random byte ``b`` (uniform
over 128 levels in [0.502, 1]), a noise value ``b / 255`` (uniform over 0..255). Images are
composed on demand from the shared dSprites cache, so these datasets add no cache of their own.
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from disentune.data.dsprites import DSprites
from disentune.data.procedural import UINT8_MAX, from_uint8, index_bytes, refuse_path
from disentune.registry import DATASETS

# Seeds of the per-image streams; changing one changes every image of that dataset.
COLOR_SEED = 0x0C0102
NOISE_SEED = 0x0A015E


class _ThreeChannelDSprites(DSprites):
    """dSprites with three channels in 8-bit levels; subclasses define :meth:`compose`."""

    uint8_max = UINT8_MAX  # DSprites' is 1 (binary)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    @abc.abstractmethod
    def compose(self, sprite: np.ndarray, index: np.ndarray) -> np.ndarray:
        """uint8 ``(n, 3, R, R)`` in 0..255 from the binary sprites ``(n, 1, R, R)`` (0 or 1)."""

    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Images ``(n, 3, R, R)``: uint8 levels 0..255, or ``dtype`` floats ``levels / 255``."""
        index = np.asarray(index, dtype=np.int64)
        sprite = super().images_at(index, dtype=np.uint8)
        return from_uint8(self.compose(sprite, index), dtype)


class ColorDSprites(_ThreeChannelDSprites):
    """dSprites whose sprite has a per-image colour, each channel in [0.5, 1]; black background."""

    def colours(self, index: np.ndarray) -> np.ndarray:
        """The sprite colour of each image, uint8 ``(n, 3)`` in 128..255 (0.502..1 as floats)."""
        return np.uint8(128) + index_bytes(COLOR_SEED, index, 3) // np.uint8(2)

    def compose(self, sprite: np.ndarray, index: np.ndarray) -> np.ndarray:
        return sprite * self.colours(index)[:, :, None, None]  # (n,1,R,R) x (n,3,1,1)


class NoisyDSprites(_ThreeChannelDSprites):
    """dSprites: a white sprite on noise U(0, 1) per pixel and channel: min(sprite + noise, 1)."""

    def noise(self, index: np.ndarray) -> np.ndarray:
        """The background noise of each image, uint8 ``(n, 3, R, R)`` in 0..255."""
        r = self.resolution
        return index_bytes(NOISE_SEED, index, 3 * r * r).reshape(-1, 3, r, r)

    def compose(self, sprite: np.ndarray, index: np.ndarray) -> np.ndarray:
        # sprite is 0 or 1, so min(sprite + noise, 1) is the noise where the sprite is off
        return np.maximum(self.noise(index), sprite * np.uint8(255))


@DATASETS.register("color_dsprites")
def make_color_dsprites(*, resolution: int, path: str | Path | None = None) -> ColorDSprites:
    refuse_path("color_dsprites", path)
    return ColorDSprites(resolution=resolution)


@DATASETS.register("noisy_dsprites")
def make_noisy_dsprites(*, resolution: int, path: str | Path | None = None) -> NoisyDSprites:
    refuse_path("noisy_dsprites", path)
    return NoisyDSprites(resolution=resolution)
