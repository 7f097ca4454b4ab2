"""The training images of one worker: resident on its device when small, gathered per batch
from the dataset's shared cache when large.

A small training set is decoded once and kept on the worker's device as uint8 (on a GPU this
keeps the input pipeline off the PCIe bus). A large one is never copied whole into a worker:
every batch is decoded from the dataset's memory-mapped cache, which the operating system shares
between all workers of the machine (dSprites' whole 64 px grid decoded would be 2.8 GiB in
every worker; its bit-packed cache is 360 MiB, shared). Both give the same float batches, so
a trial's results do not depend on which one it used.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from disentune.data.ground_truth import GroundTruthData

# Largest decoded training set kept resident, per device type (bytes of uint8 pixels).
RESIDENT_MAX_BYTES = {"cpu": 256 * 2**20, "cuda": 4 * 2**30}


class TrainingImages:
    """Batches of the images ``data.images_at(index)`` as float32 tensors on ``device``."""

    def __init__(self, data: GroundTruthData, index: np.ndarray, device: torch.device) -> None:
        self.data, self.index, self.device = data, np.asarray(index, dtype=np.int64), device
        nbytes = len(self.index) * math.prod(data.image_shape)
        self.resident = nbytes <= RESIDENT_MAX_BYTES.get(device.type, RESIDENT_MAX_BYTES["cpu"])
        self._images = (torch.from_numpy(data.images_at(self.index, dtype=np.uint8)).to(device)
                        if self.resident else None)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: torch.Tensor) -> torch.Tensor:
        """The images at positions ``rows`` (into ``index``), float32 in [0, 1] on the device."""
        if self._images is not None:  # uint8 levels 0 .. uint8_max (1 for binary dSprites, else 255)
            images = self._images[rows.to(self.device)].float()
            # a division, not a product with 1 / 255: equal bit for bit to images_at's float images
            return images if self.data.uint8_max == 1 else images / self.data.uint8_max
        picked = self.index[rows.cpu().numpy()]
        return torch.from_numpy(self.data.images_at(picked, dtype=np.float32)).to(self.device, non_blocking=True)
