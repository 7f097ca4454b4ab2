"""The published Cars3D files (Reed et al. 2015): one ``car_*_mesh.mat`` per car model.

``data.path`` is the folder holding them (183 as published). Each is a MATLAB v5 file whose
variable ``im`` is uint8 ``(128, 128, 3, 24, 4)``: height, width, RGB, 24 azimuths, 4 elevations.
Read with ``scipy.io.loadmat`` (MATLAB's own format: nothing is unpickled), one file at a time.

Factors as disentanglement_lib: elevation 4, azimuth 24, object (one per file, in sorted file
order, labelled by the file name), object fastest; values are class indices. Three channels.
Registered as ``cars3d``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np

from disentune.data.convert import Conversion, check_uint8
from disentune.data.ground_truth import Factor
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.importer import Reader, load
from disentune.data.npz import reading
from disentune.data.sources import SourceFile
from disentune.errors import UserError
from disentune.registry import DATASETS

PATTERN = "car_*_mesh.mat"
AZIMUTHS, ELEVATIONS = 24, 4


def _load_im(path: Path, label: str) -> np.ndarray:
    """The ``im`` array ``(H, H, 3, 24, 4)`` uint8 of one file, checked."""
    from scipy.io import loadmat

    with reading(label, "not a readable MATLAB v5 .mat file; truncated or corrupt"):
        try:
            mat = loadmat(path, variable_names=["im"])
        except NotImplementedError:  # MATLAB v7.3 is HDF5
            raise UserError(f"{label}: a MATLAB v7.3 file; save it as v5 (as published)") from None
    if "im" not in mat:
        raise UserError(f"{label}: no variable 'im'")
    im = mat["im"]
    check_uint8(im.dtype, label, "im")
    if im.ndim != 5 or im.shape[2:] != (3, AZIMUTHS, ELEVATIONS) or im.shape[0] != im.shape[1]:
        raise UserError(f"{label}: im must be (H, H, 3, {AZIMUTHS}, {ELEVATIONS}), got {im.shape}")
    return im


def select_cars(files: list[SourceFile], uri: str) -> list[SourceFile]:
    if not files:
        raise UserError(f"{uri}: holds no {PATTERN} files")
    return files


def open_cars3d(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    first = _load_im(paths[0], files[0].uri)
    side, objects = first.shape[0], len(files)
    del first
    # cache row of (elevation e, azimuth a, object o) = (e * 24 + a) * objects + o
    views = (np.arange(ELEVATIONS)[:, None] * AZIMUTHS + np.arange(AZIMUTHS)[None, :]).ravel() * objects
    factors = (Factor("elevation", np.arange(ELEVATIONS, dtype=np.float64)),
               Factor("azimuth", np.arange(AZIMUTHS, dtype=np.float64)),
               Factor("object", np.arange(objects, dtype=np.float64),
                      tuple(Path(f.name).stem for f in files)))

    def chunks():
        for o, (path, file) in enumerate(zip(paths, files)):
            im = _load_im(path, file.uri)
            if im.shape[0] != side:
                raise UserError(f"{file.uri}: {im.shape[0]} px images, {files[0].name} has {side}")
            # (H, W, 3, az, el) -> (el, az, H, W, 3) -> (96, H, W, 3), elevation-major
            yield np.ascontiguousarray(im.transpose(4, 3, 0, 1, 2)).reshape(-1, side, side, 3), views + o

    return Conversion(num_images=ELEVATIONS * AZIMUTHS * objects, channels=3, chunks=chunks,
                      factors=factors)


READER = Reader(name="cars3d", folder=True,
                accept=lambda name: "/" not in name and fnmatch.fnmatch(name, PATTERN),
                path_help=f"the folder holding the {PATTERN} files", open=open_cars3d,
                select=select_cars)


@DATASETS.register("cars3d")
def make_cars3d(*, resolution: int, path: str | None = None) -> CachedGroundTruth | CachedImages:
    """Cars3D from the folder ``path``, converted to ``resolution``."""
    return load(READER, path, resolution)
