"""The published MPI3D files (Gondal et al. 2019): ``mpi3d_toy.npz``, ``mpi3d_realistic.npz``,
``mpi3d_real.npz``.

Layout (an npz, stored or deflated)::

    images  (1036800, 64, 64, 3) uint8   RGB, channels last, in grid order (last factor fastest)

The file has no labels: the grid is the documented order, object_color 6, object_shape 6,
object_size 2, camera_height 3, background_color 3, horizontal_axis 40, vertical_axis 40
(1,036,800 images). Older toy and realistic files have 4 colours and 4 shapes (460,800 images);
the layout is told from the length, and any other length is refused. Factor values are the class
indices. Registered as ``mpi3d``; ``data.path`` is the file. ``images`` (12.7 GB of pixels) is
streamed in chunks through the zip member, so the conversion's memory does not grow with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentune.data.convert import Conversion, check_uint8, rows_per_chunk
from disentune.data.ground_truth import Factor
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.importer import Reader, load
from disentune.data.npz import NpzFile
from disentune.data.sources import SourceFile
from disentune.errors import UserError
from disentune.registry import DATASETS

FACTOR_NAMES = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                "horizontal_axis", "vertical_axis")
LAYOUTS = {  # number of images -> factor sizes
    1_036_800: (6, 6, 2, 3, 3, 40, 40),
    460_800: (4, 4, 2, 3, 3, 40, 40),
}


def open_mpi3d(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    label = files[0].uri
    npz = NpzFile(paths[0], label)
    images = npz.member("images")
    check_uint8(images.dtype, label, "images")
    if len(images.shape) != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise UserError(f"{label}: images must be (n, H, H, 3) RGB, got shape {images.shape}")
    n, side = images.shape[0], images.shape[1]
    if n not in LAYOUTS:
        raise UserError(f"{label}: {n:,} images; MPI3D has 1,036,800 (6 colours x 6 shapes x 2 x 3 x 3 "
                        "x 40 x 40) or, in older toy/realistic files, 460,800 (4 colours x 4 shapes)")
    factors = tuple(Factor(name, np.arange(size, dtype=np.float64))
                    for name, size in zip(FACTOR_NAMES, LAYOUTS[n]))

    def chunks():
        start = 0
        with npz:
            for rows in npz.iter_rows("images", rows_per_chunk(side * side * 3)):
                yield rows, np.arange(start, start + len(rows), dtype=np.int64)
                start += len(rows)

    return Conversion(num_images=n, channels=3, chunks=chunks, factors=factors)


READER = Reader(name="mpi3d", folder=False, accept=lambda name: name.endswith(".npz"),
                path_help="an MPI3D file (mpi3d_toy.npz, mpi3d_realistic.npz or mpi3d_real.npz)",
                open=open_mpi3d)


@DATASETS.register("mpi3d")
def make_mpi3d(*, resolution: int, path: str | None = None) -> CachedGroundTruth | CachedImages:
    """A published MPI3D npz at ``path``, converted to ``resolution``."""
    return load(READER, path, resolution)
