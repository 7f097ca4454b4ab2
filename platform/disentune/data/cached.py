"""Datasets read from a conversion-cache entry: the images are a shared, read-only memory map.

A training worker never holds a private copy of a large dataset: :meth:`images_at` gathers the
rows it asks for from ``np.load(entry.path, mmap_mode="r")``, whose pages the operating system
shares between every process of the machine (as dSprites' bit-packed cache). Pickling (to a Ray
worker) ships the entry, not the map; a worker on a node whose cache lacks the entry converts
it there from the source URI once (the node's lock makes the other workers wait for it).
"""

from __future__ import annotations

import numpy as np

from disentune.data.cache import CacheEntry
from disentune.data.ground_truth import GroundTruthData, ImageData
from disentune.errors import UserError


class _MappedEntry:
    """The image side of a cache entry: ``image_shape``, ``images_at`` over the memory map."""

    uint8_max = 255

    def __init__(self, entry: CacheEntry, *, dataset: str, uri: str) -> None:
        self.entry, self.dataset, self.uri = entry, dataset, uri
        self._pixels: np.ndarray | None = None

    @property
    def resolution(self) -> int:
        return self.entry.resolution

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.entry.channels, self.entry.resolution, self.entry.resolution)

    @property
    def pixels(self) -> np.ndarray:
        """uint8 ``(num_images, C, R, R)``, memory-mapped read-only."""
        if self._pixels is None:
            if not self.entry.path.exists():
                self._reacquire()
            self._pixels = np.load(self.entry.path, mmap_mode="r")
        return self._pixels

    def _reacquire(self) -> None:
        from disentune.registry import DATASETS  # this node lacks the entry: convert it here

        fresh = DATASETS.get(self.dataset)(resolution=self.entry.resolution, path=self.uri)
        if fresh.entry.sha256 != self.entry.sha256:
            raise UserError(f"{self.uri}: changed since this run converted it "
                            f"(sha256 {self.entry.sha256[:12]} then, {fresh.entry.sha256[:12]} now)")
        self.entry = fresh.entry

    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Images ``(n, C, R, R)``: levels 0..255 for ``dtype=np.uint8``, else in [0, 1]."""
        rows = self.pixels[np.asarray(index, dtype=np.int64)]
        if np.dtype(dtype) == np.uint8:
            return rows
        return np.divide(rows, 255.0, dtype=dtype)

    def __getstate__(self) -> dict:  # ship the entry, not the memory map, to Ray workers
        state = dict(self.__dict__)
        state["_pixels"] = None
        return state


class CachedGroundTruth(_MappedEntry, GroundTruthData):
    """A published factor grid from the cache; factors and nuisance size from the sidecar."""

    def __init__(self, entry: CacheEntry, *, dataset: str, uri: str) -> None:
        super().__init__(entry, dataset=dataset, uri=uri)
        self.factors = entry.factors
        self.nuisance_size = entry.nuisance_size
        if self.num_images != entry.images:
            raise UserError(f"{entry.path}: the sidecar's grid has {self.num_images} images, the "
                            f"cache {entry.images}; delete the entry to convert it again")


class CachedImages(_MappedEntry, ImageData):
    """An image collection without factors from the cache (``factors == ()``)."""

    @property
    def num_images(self) -> int:
        return self.entry.images
