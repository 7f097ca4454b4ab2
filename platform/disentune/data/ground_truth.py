"""The image-data interface shared by every dataset, the factor grid, and factor-region exclusion.

:class:`ImageData` is what training and the quality metrics (FID) read: ``num_images`` images of
``image_shape = (C, R, R)``, addressed by a flat index. An image collection without factors (a
folder of PNGs, CelebA) is just that: ``factors == ()`` and ``has_factors`` is False, so the
metrics that need factors are refused for it.

:class:`GroundTruthData` adds ground-truth factors on a full grid: ``K`` factors, factor ``k``
taking ``sizes[k]`` values, and one image per combination. Images are addressed either by their
*classes* (an int array of shape ``(n, K)``, ``classes[:, k] < sizes[k]``) or by their flat *index*
in row-major order (the last factor varies fastest), so ``index = classes @ strides`` with
``strides[k] = prod(sizes[k+1:])``.

**Nuisance variables.** Some published grids have a variable that is not a factor: SmallNORB's
object instance (disentanglement_lib exposes category, elevation, azimuth and lighting, and draws
the instance at random). Such a dataset stores the grid with the nuisance variable *last*
(fastest), so with ``N = nuisance_size``

    ``index = (classes @ strides) * N + nuisance``,  ``num_images = prod(sizes) * N``.

:meth:`~GroundTruthData.classes_of` returns the public classes of an index; :meth:`index_of` and
:meth:`images` pick nuisance 0, or a uniformly random one when given ``rng``. With ``N = 1`` (every
dataset without a nuisance variable) both formulas reduce to the plain grid.

**Pixel levels.** ``images_at(index, dtype=np.uint8)`` returns the stored integer levels
``0 .. uint8_max`` (compact, for a training worker to keep resident); float dtypes return the
images in [0, 1], i.e. the levels divided by ``uint8_max``. Binary procedural data (dSprites)
stores ``uint8_max = 1``; 8-bit data (every published file, every image collection) 255.

Regions (see :class:`Region`) name parts of the grid that are left out of training, which is how
the anomaly benchmarks hold out a shape or a factor combination.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from disentune.errors import ConfigError


@dataclass(frozen=True)
class Factor:
    """One ground-truth factor: its name, its value grid and, if categorical, value labels."""

    name: str
    values: np.ndarray  # (size,) float64
    labels: tuple[str, ...] | None = None

    @property
    def size(self) -> int:
        return int(self.values.shape[0])


class ImageData(abc.ABC):
    """``num_images`` images of ``image_shape``, addressed by flat index; no factors."""

    factors: tuple[Factor, ...] = ()
    has_factors: bool = False
    uint8_max: int = 255  # the level of a white pixel in ``images_at(..., dtype=np.uint8)``

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width)."""

    @property
    @abc.abstractmethod
    def num_images(self) -> int:
        """How many images there are; valid flat indices are ``0 .. num_images - 1``."""

    @abc.abstractmethod
    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Images ``(n, C, H, W)`` for flat indices ``(n,)``: float in [0, 1], or with
        ``dtype=np.uint8`` the stored levels ``0 .. uint8_max``."""


class GroundTruthData(ImageData):
    """A full factor grid with one image per combination of factor values (and nuisance value)."""

    factors: tuple[Factor, ...]
    has_factors = True
    nuisance_size: int = 1  # values of the nuisance variable stored fastest (1: none)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    @property
    def factor_sizes(self) -> np.ndarray:
        return np.array([f.size for f in self.factors], dtype=np.int64)

    @property
    def strides(self) -> np.ndarray:
        """Strides ``(K,)`` of the public grid (multiply by ``nuisance_size`` for flat indices)."""
        sizes = self.factor_sizes
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    @property
    def num_images(self) -> int:
        return int(np.prod(self.factor_sizes)) * int(self.nuisance_size)

    def index_of(self, classes: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Flat indices ``(n,)`` of factor classes ``(n, K)``: nuisance 0, or random from ``rng``."""
        classes = np.asarray(classes, dtype=np.int64)
        if classes.ndim != 2 or classes.shape[1] != len(self.factors):
            raise ValueError(f"classes must have shape (n, {len(self.factors)}), got {classes.shape}")
        if (classes < 0).any() or (classes >= self.factor_sizes).any():
            raise ValueError("factor classes out of range")
        public = classes @ self.strides
        if self.nuisance_size == 1:
            return public
        nuisance = (np.zeros(len(classes), dtype=np.int64) if rng is None
                    else rng.integers(0, self.nuisance_size, len(classes)))
        return public * self.nuisance_size + nuisance

    def classes_of(self, index: np.ndarray) -> np.ndarray:
        """Factor classes ``(n, K)`` of flat indices ``(n,)`` (the nuisance value is dropped)."""
        index = np.asarray(index, dtype=np.int64)
        if (index < 0).any() or (index >= self.num_images).any():
            raise ValueError(f"image index out of range [0, {self.num_images})")
        return ((index // self.nuisance_size)[:, None] // self.strides) % self.factor_sizes

    def nuisance_of(self, index: np.ndarray) -> np.ndarray:
        """The nuisance value ``(n,)`` of flat indices ``(n,)`` (all 0 without one)."""
        return np.asarray(index, dtype=np.int64) % self.nuisance_size

    def factor_values(self, classes: np.ndarray) -> np.ndarray:
        """The factor values ``(n, K)`` (floats in the dataset's units) of factor classes."""
        return np.stack([f.values[classes[:, k]] for k, f in enumerate(self.factors)], axis=1)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor classes drawn uniformly and independently per factor, shape ``(n, K)``."""
        return rng.integers(0, self.factor_sizes, size=(n, len(self.factors)))

    def images(self, classes: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Images ``(n, C, H, W)`` float32 in [0, 1] for factor classes ``(n, K)`` (nuisance as
        in :meth:`index_of`)."""
        return self.images_at(self.index_of(classes, rng))


@dataclass(frozen=True)
class Region:
    """A box in factor space: for each named factor, the values it covers.

    A categorical factor lists labels (``shape: [heart]``); a numeric one gives a closed interval of
    factor values (``pos_x: [0.5, 1.0]``). Factors not named are unconstrained, so an image lies in
    the region when every named factor's value is covered.
    """

    bounds: Mapping[str, tuple]

    def validate(self, data: GroundTruthData, where: str) -> None:
        by_name = {f.name: f for f in data.factors}
        if not self.bounds:
            raise ConfigError(f"{where}: a region must name at least one factor")
        for name, spec in self.bounds.items():
            if name not in by_name:
                raise ConfigError(
                    f"{where}.{name}: unknown factor; choose from {', '.join(by_name)}"
                )
            factor = by_name[name]
            if factor.labels is not None:
                bad = [v for v in spec if v not in factor.labels]
                if bad or not spec:
                    raise ConfigError(
                        f"{where}.{name}: {list(spec)!r} is not a non-empty list of "
                        f"{', '.join(factor.labels)}"
                    )
            elif (
                len(spec) != 2
                or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in spec)
                or spec[0] > spec[1]
            ):
                raise ConfigError(
                    f"{where}.{name}: {list(spec)!r} is not an interval [low, high] of numbers"
                )

    def contains(self, data: GroundTruthData, classes: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: which of the factor classes ``(n, K)`` lie in the region."""
        inside = np.ones(len(classes), dtype=bool)
        for k, factor in enumerate(data.factors):
            if factor.name not in self.bounds:
                continue
            spec = self.bounds[factor.name]
            if factor.labels is not None:
                allowed = np.isin(np.arange(factor.size), [factor.labels.index(v) for v in spec])
            else:
                allowed = (factor.values >= spec[0]) & (factor.values <= spec[1])
            inside &= allowed[classes[:, k]]
        return inside


def excluded_mask(data: GroundTruthData, regions: Sequence[Region]) -> np.ndarray:
    """Boolean ``(num_images,)``: True where an image lies in any of the regions."""
    mask = np.zeros(data.num_images, dtype=bool)
    if not regions:
        return mask
    classes = data.classes_of(np.arange(data.num_images))
    for region in regions:
        mask |= region.contains(data, classes)
    return mask


def training_indices(
    data: ImageData, regions: Sequence[Region], size: int, rng: np.random.Generator
) -> np.ndarray:
    """Sorted flat indices of ``size`` images outside every region (all of them if size is 0).

    An image collection without factors has no regions to exclude: every image is allowed.
    """
    if not data.has_factors:
        if regions:
            raise ConfigError("data.exclude: this dataset has no factors, so no region can be excluded")
        allowed = np.arange(data.num_images)
    else:
        allowed = np.flatnonzero(~excluded_mask(data, regions))  # type: ignore[arg-type]
    if allowed.size == 0:
        raise ConfigError("data.exclude leaves no training images: every image lies in a region")
    if size and size < allowed.size:
        allowed = np.sort(rng.choice(allowed, size=size, replace=False))
    return allowed
