"""Procedural dSprites (Matthey et al. 2017), rendered exactly on the published factor grid.

Factors, in index order (pos_y varies fastest, so ``index = classes @ [245760, 40960, 1024, 32, 1]``):

======== ==== ===============================================================
shape       3 square, ellipse, heart
scale       6 linspace(0.5, 1, 6)
orientation 40 linspace(0, 2*pi, 40), both ends included as in the original
pos_x      32 linspace(0, 1, 32)
pos_y      32 linspace(0, 1, 32)
======== ==== ===============================================================

737,280 binary images. The original sprites were drawn by hand, so these renders match the factor
grid and the look, not every pixel. Geometry, in units of the image width with pixel centres at
``(j + 0.5) / R``: a sprite is centred at ``0.2 + 0.6 * pos``; at scale ``s`` the square has half-side
``0.14 s``, the ellipse semi-axes ``(0.2 s, 0.1 s)`` and the heart is the implicit curve
``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0`` scaled by ``0.13 s``. Rotation is counter-clockwise by the
orientation angle about the sprite centre. A pixel is on when its centre lies inside the shape.

The whole grid is rendered once per resolution, vectorised over the 32 x 32 positions of each
(shape, scale, orientation), and cached on disk as bit-packed rows (512 bytes an image at 64 x 64).
Readers memory-map the cache, so a worker touches only the images it uses.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from disentune.data.cache import cache_dir
from disentune.data.ground_truth import Factor, GroundTruthData
from disentune.errors import UserError
from disentune.registry import DATASETS
from disentune.storage import is_no_space, no_space, reserve_file

RENDER_VERSION = 1
SHAPES = ("square", "ellipse", "heart")
_CENTRE_LOW, _CENTRE_SPAN = 0.2, 0.6
_MAX_RADIUS = 0.215  # bounds every shape at scale 1, any orientation (units of image width)


def shape_mask(shape: int, x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """Inside-test of ``shape`` at ``scale`` for points ``(x, y)`` in the sprite's own frame.

    ``x`` points right and ``y`` points down (image rows), both in units of the image width.
    """
    if shape == 0:  # square
        half = 0.14 * scale
        return (np.abs(x) <= half) & (np.abs(y) <= half)
    if shape == 1:  # ellipse, long axis along x
        return (x / (0.2 * scale)) ** 2 + (y / (0.1 * scale)) ** 2 <= 1.0
    # heart: the implicit curve has y pointing up; shift so the shape sits about the centre
    k = 0.13 * scale
    hx, hy = x / k, -y / k + 0.1
    p = hx * hx + hy * hy - 1.0
    return p * p * p - hx * hx * hy * hy * hy <= 0.0


def _windows(centres: np.ndarray, resolution: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For sprite centres ``(P,)``: first pixel of each window ``(P,)`` and offsets ``(P, width)``.

    Offsets are pixel-centre coordinates minus the sprite centre, in units of the image width.
    """
    start = np.floor(centres * resolution - 0.5 - width / 2).astype(np.int64) + 1
    pixels = start[:, None] + np.arange(width)[None, :]
    return start, (pixels + 0.5) / resolution - centres[:, None]


class DSprites(GroundTruthData):
    """dSprites at ``resolution`` x ``resolution``, one channel, values 0 or 1 (``uint8_max = 1``)."""

    uint8_max = 1

    def __init__(self, *, resolution: int = 64, cache: Path | None = None) -> None:
        if not 8 <= resolution <= 256:
            raise ValueError(f"resolution must lie in [8, 256], got {resolution}")
        self.resolution = resolution
        self.factors = (
            Factor("shape", np.arange(3, dtype=np.float64), SHAPES),
            Factor("scale", np.linspace(0.5, 1.0, 6)),
            Factor("orientation", np.linspace(0.0, 2 * math.pi, 40)),
            Factor("pos_x", np.linspace(0.0, 1.0, 32)),
            Factor("pos_y", np.linspace(0.0, 1.0, 32)),
        )
        self.path = (cache or cache_dir()) / f"dsprites-r{resolution}-v{RENDER_VERSION}.npy"
        self._packed: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.resolution, self.resolution)

    # -- rendering ---------------------------------------------------------------------------
    def render_block(self, shape: int, scale_class: int, orientation_class: int) -> np.ndarray:
        """All 32 x 32 positions of one (shape, scale, orientation): bool ``(1024, R, R)``.

        Row ``32 * pos_x_class + pos_y_class``, matching the flat index order.
        """
        r = self.resolution
        scale = self.factors[1].values[scale_class]
        angle = self.factors[2].values[orientation_class]
        width = int(math.ceil(2 * _MAX_RADIUS * r)) + 2
        centres = _CENTRE_LOW + _CENTRE_SPAN * self.factors[3].values  # same grid for x and y
        start, offsets = _windows(centres, r, width)  # (32,), (32, width)
        c, s = math.cos(angle), math.sin(angle)
        dx = offsets[:, None, None, :]  # pos_x, -, -, column
        dy = offsets[None, :, :, None]  # -, pos_y, row, -
        # rotate the pixel offsets into the sprite frame (inverse of a counter-clockwise turn
        # on screen, where y points down)
        xs = c * dx - s * dy
        ys = s * dx + c * dy
        inside = shape_mask(shape, xs, ys, scale)  # (32, 32, width, width)

        pad = width
        canvas = np.zeros((32, 32, r + 2 * pad, r + 2 * pad), dtype=bool)
        rows = (start[:, None] + pad + np.arange(width))  # (32 pos, width)
        cols = rows
        canvas[
            np.arange(32)[:, None, None, None],
            np.arange(32)[None, :, None, None],
            rows[None, :, :, None],
            cols[:, None, None, :],
        ] = inside
        return canvas[:, :, pad : pad + r, pad : pad + r].reshape(1024, r, r)

    def render(self) -> Path:
        """Render the whole grid into the cache (atomically) unless it is there; return its path."""
        if self.path.exists():
            return self.path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        r = self.resolution
        row_bytes = (r * r + 7) // 8
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".part")
        os.close(fd)
        try:
            try:  # allocate the whole file now: a full disk is one line, not a SIGBUS in the map
                out = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.uint8, shape=(self.num_images, row_bytes)
                )
                reserve_file(tmp, self.path)
            except OSError as err:
                if not is_no_space(err):
                    raise
                os.truncate(tmp, 0)
                raise no_space(self.path, self.num_images * row_bytes) from None
            block = 0
            for shape in range(3):
                for scale in range(6):
                    for orientation in range(40):
                        images = self.render_block(shape, scale, orientation)
                        out[block : block + 1024] = np.packbits(images.reshape(1024, -1), axis=1)
                        block += 1024
            out.flush()
            del out
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.path

    # -- reading -----------------------------------------------------------------------------
    @property
    def packed(self) -> np.ndarray:
        """The bit-packed cache ``(737280, ceil(R*R/8))``, memory-mapped read-only."""
        if self._packed is None:
            self._packed = np.load(self.render(), mmap_mode="r")
        return self._packed

    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        r = self.resolution
        bits = np.unpackbits(self.packed[index], axis=1, count=r * r)
        return bits.reshape(-1, 1, r, r).astype(dtype, copy=False)

    def __getstate__(self) -> dict:  # ship the path, not the memory map, to Ray workers
        state = dict(self.__dict__)
        state["_packed"] = None
        return state


@DATASETS.register("dsprites")
def make_dsprites(*, resolution: int, path: str | None = None) -> DSprites:
    """Procedural dSprites; ``path`` must be None (the published npz is ``dsprites_file``)."""
    if path is not None:
        raise UserError(f"dsprites is rendered procedurally and reads no file (data.path={path!r}); "
                        "use dataset dsprites_file for the published npz")
    return DSprites(resolution=resolution)
