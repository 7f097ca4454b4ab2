"""The published dSprites file (Matthey et al. 2017), ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.

Layout (an ``np.savez_compressed`` archive, members deflated)::

    imgs             (737280, 64, 64) uint8 in {0, 1}
    latents_classes  (737280, 6) int64   color, shape, scale, orientation, posX, posY
    latents_values   (737280, 6) float64 the same in the factors' units
    metadata         a pickled dict (an object array): never read

Registered as ``dsprites_file``; ``data.path`` is the file. Only plain arrays are read
(``allow_pickle=False``), ``imgs`` streamed in chunks; ``metadata`` is never opened, and a file
whose ``imgs`` or ``latents_classes`` would need unpickling is refused. The first latent (colour,
one value) is dropped, so the factors are those of the procedural data/dsprites.py: shape 3,
scale 6, orientation 40, pos_x 32, pos_y 32 (pos_y fastest), their sizes read from the classes
(a reduced grid reads as such), their values from ``latents_values`` when present (else the class
indices). Rows out of grid order are reordered through the classes. Pixels 0/1 become 0/255,
then the area resize to the run's resolution, one channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentune.data.convert import Conversion, check_uint8, rows_per_chunk
from disentune.data.dsprites import SHAPES
from disentune.data.grid import grid_from_labels
from disentune.data.ground_truth import Factor
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.importer import Reader, load
from disentune.data.npz import NpzFile
from disentune.data.sources import SourceFile
from disentune.errors import UserError
from disentune.registry import DATASETS

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")


def _values_by_class(values: np.ndarray, classes: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float64)
    out[classes] = values  # every class occurs (the grid is complete); any row of it will do
    return out


def open_dsprites(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    label = files[0].uri
    npz = NpzFile(paths[0], label)
    imgs = npz.member("imgs")
    check_uint8(imgs.dtype, label, "imgs")
    if len(imgs.shape) != 3 or imgs.shape[1] != imgs.shape[2]:
        raise UserError(f"{label}: imgs must be (n, H, H) images, got shape {imgs.shape}")
    classes = npz.read("latents_classes")
    if (classes.ndim != 2 or classes.shape != (imgs.shape[0], 6)
            or not np.issubdtype(classes.dtype, np.integer)):
        raise UserError(f"{label}: latents_classes must be an integer ({imgs.shape[0]}, 6) array, "
                        f"got {classes.dtype} {classes.shape}")
    if np.unique(classes[:, 0]).size != 1:
        raise UserError(f"{label}: latents_classes column 0 (colour) must take one value")
    grid = grid_from_labels(classes[:, 1:], FACTOR_NAMES, label, value_labels={"shape": SHAPES})
    factors = grid.factors
    if "latents_values" in npz.names:
        values = npz.read("latents_values")
        if values.shape != classes.shape or not np.issubdtype(values.dtype, np.number):
            raise UserError(f"{label}: latents_values must be a numeric {classes.shape} array, "
                            f"got {values.dtype} {values.shape}")
        factors = tuple(
            Factor(f.name, _values_by_class(values[:, k + 1], np.searchsorted(f.values, classes[:, k + 1]),
                                            f.size), f.labels)
            for k, f in enumerate(grid.factors))
    n, side = imgs.shape[0], imgs.shape[1]

    def chunks():
        start = 0
        with npz:
            for rows in npz.iter_rows("imgs", rows_per_chunk(side * side)):
                if rows.max(initial=0) > 1:
                    raise UserError(f"{label}: imgs must hold 0 or 1, found {int(rows.max())}")
                yield (rows * np.uint8(255))[..., None], grid.rows(start, start + len(rows))
                start += len(rows)

    return Conversion(num_images=n, channels=1, chunks=chunks, factors=factors)


READER = Reader(name="dsprites_file", folder=False, accept=lambda name: name.endswith(".npz"),
                path_help="the dSprites file dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                open=open_dsprites)


@DATASETS.register("dsprites_file")
def make_dsprites_file(*, resolution: int, path: str | None = None) -> CachedGroundTruth | CachedImages:
    """The published dSprites npz at ``path``, converted to ``resolution``."""
    return load(READER, path, resolution)
