"""The published 3D Shapes file (Burgess & Kim 2018), ``3dshapes.h5``.

Layout (HDF5)::

    images  (480000, 64, 64, 3) uint8   RGB, channels last
    labels  (480000, 6) float64         floor_hue, wall_hue, object_hue, scale, shape, orientation

Factors, in this order (orientation fastest, as the file stores them): floor_hue 10, wall_hue 10,
object_hue 10, scale 8, shape 4, orientation 15. Each factor's values are the sorted unique
values of its label column, so a reduced grid reads as such; rows out of grid order are
reordered through the labels, and a grid with a combination missing or repeated is refused.
Registered as ``shapes3d``; ``data.path`` is the file. ``images`` is read in slices with h5py
(chunked and compressed files alike), never whole.
"""

from __future__ import annotations

from pathlib import Path

from disentune.data.convert import Conversion, check_uint8, rows_per_chunk
from disentune.data.grid import grid_from_labels
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.importer import Reader, load
from disentune.data.npz import reading
from disentune.data.sources import SourceFile
from disentune.errors import UserError
from disentune.registry import DATASETS

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")


def _dataset(f, name: str, label: str):
    import h5py

    node = f.get(name)
    if not isinstance(node, h5py.Dataset):
        have = ", ".join(sorted(f.keys())) or "nothing"
        raise UserError(f"{label}: no dataset {name!r} (it has {have})")
    if node.dtype.hasobject or node.dtype.kind not in "uif":
        raise UserError(f"{label}: {name} must be numeric, got {node.dtype}")
    return node


def open_shapes3d(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    import h5py

    label = files[0].uri
    with reading(label, "not a readable HDF5 file; truncated or corrupt"):
        f = h5py.File(paths[0], "r")
    with f, reading(label):
        images, labels_node = _dataset(f, "images", label), _dataset(f, "labels", label)
        check_uint8(images.dtype, label, "images")
        if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
            raise UserError(f"{label}: images must be (n, H, H, 3) RGB, got shape {images.shape}")
        if labels_node.shape != (images.shape[0], len(FACTOR_NAMES)):
            raise UserError(f"{label}: labels must be ({images.shape[0]}, 6), got {labels_node.shape}")
        labels = labels_node[()]
    grid = grid_from_labels(labels, FACTOR_NAMES, label)
    n, side = images.shape[0], images.shape[1]
    step = rows_per_chunk(side * side * 3)

    def chunks():
        with reading(label), h5py.File(paths[0], "r") as h5:
            pixels = h5["images"]
            for start in range(0, n, step):
                stop = min(n, start + step)
                yield pixels[start:stop], grid.rows(start, stop)

    return Conversion(num_images=n, channels=3, chunks=chunks, factors=grid.factors)


READER = Reader(name="shapes3d", folder=False, accept=lambda name: name.endswith(".h5"),
                path_help="the 3D Shapes file 3dshapes.h5", open=open_shapes3d)


@DATASETS.register("shapes3d")
def make_shapes3d(*, resolution: int, path: str | None = None) -> CachedGroundTruth | CachedImages:
    """The published 3D Shapes h5 at ``path``, converted to ``resolution``."""
    return load(READER, path, resolution)
