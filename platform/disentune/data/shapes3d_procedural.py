"""A colour dataset with Shapes3D's factor grid (Burgess & Kim 2018), rendered by the platform.

Factors, in index order (orientation fastest, so
``index = classes @ [48000, 4800, 480, 60, 15, 1]``), with 3dshapes' names, values and units:

=========== ==== =========================================================
floor_hue     10 linspace(0, 1, 10, endpoint=False)
wall_hue      10 linspace(0, 1, 10, endpoint=False)
object_hue    10 linspace(0, 1, 10, endpoint=False)
scale          8 linspace(0.75, 1.25, 8)
shape          4 cube, cylinder, sphere, capsule (values 0..3)
orientation   15 linspace(-30, 30, 15), degrees
=========== ==== =========================================================

480,000 RGB images. The renders match the grid and the look of 3dshapes, not every pixel. The
scene (:mod:`disentune.data.scene3d`; world units, z up): a square room of half-width 4.5 turned
by 45 degrees, floor at ``z = 0``; an object standing on the floor at the origin; a pinhole
camera (field of view 45 degrees, no roll) on a circle of radius 3.8 at height 1.4, looking at
``(0, 0, 0.75)`` from azimuth ``180 + orientation`` degrees. The floor fills the bottom half,
two walls the top; at orientation 0 the camera faces the room's far corner, so the floor-wall
line peaks there, and as the view turns from -30 to 30 degrees the corner (where the two walls'
shading steps) sweeps from the left edge to the right. At scale ``s`` the cube has side ``s``,
the cylinder (upright) diameter and height ``s``, the sphere diameter ``s`` and the capsule
(lying along the world's y axis, so it turns with the view) radius ``0.35 s`` and length
``1.5 s``. A directional light fixed in the world shades every surface (Lambert plus ambient);
there are no shadows.

A pixel's colour is ``HSV(hue, 1, 1)`` of the surface it shows times that surface's shading, so
image ``x`` (channels ``c``) is, with ``a`` the object's coverage of the pixel and ``S``, ``F``,
``W`` the shaded coverages of object, floor and wall::

    x[c] = S * rgb(object_hue)[c] + (1 - a) * (F * rgb(floor_hue)[c] + W * rgb(wall_hue)[c])

All three weights depend on (scale, shape, orientation) only (the floor and wall on orientation,
the object on all three), so they are ray cast once per resolution (``k x k`` supersampled,
``k = ceil(256 / R)``, about a second) into a small cache of 480 layers ``(S, (1 - a) F,
(1 - a) W)`` (:meth:`Shapes3DProcedural.render`; 0.4 MiB at 16 px, 5.6 MiB at 64 px, 22.5 MiB
at 128 px), and any image is composed from its factor classes on demand. Pixels are 8-bit like
3dshapes' (see :mod:`disentune.data.procedural`). :func:`write_h5` writes the grid in the
``3dshapes.h5`` layout.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from disentune.data import scene3d
from disentune.data.cache import cache_dir
from disentune.data.ground_truth import Factor, GroundTruthData
from disentune.data.procedural import (
    UINT8_MAX,
    from_uint8,
    refuse_path,
    save_atomically,
    write_atomically,
)
from disentune.registry import DATASETS

RENDER_VERSION = 1
SHAPES = ("cube", "cylinder", "sphere", "capsule")
HUES = np.linspace(0.0, 1.0, 10, endpoint=False)


def hue_rgb(hue: np.ndarray) -> np.ndarray:
    """``HSV(hue, 1, 1)`` as RGB in [0, 1]: ``(...,)`` hues in [0, 1) -> ``(..., 3)`` float32."""
    h6 = 6.0 * np.asarray(hue, dtype=np.float64)[..., None]
    rgb = np.abs(h6 - np.array([3.0, 2.0, 4.0])) * np.array([1.0, -1.0, -1.0]) + [-1.0, 2.0, 2.0]
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


class Shapes3DProcedural(GroundTruthData):
    """Shapes3D's factor grid at ``resolution`` x ``resolution``, three channels, 8-bit levels."""

    uint8_max = UINT8_MAX

    def __init__(self, *, resolution: int = 64, cache: Path | None = None) -> None:
        if not 16 <= resolution <= 128:
            raise ValueError(f"resolution must lie in [16, 128], got {resolution}")
        self.resolution = resolution
        self.factors = (
            Factor("floor_hue", HUES.copy()),
            Factor("wall_hue", HUES.copy()),
            Factor("object_hue", HUES.copy()),
            Factor("scale", np.linspace(0.75, 1.25, 8)),
            Factor("shape", np.arange(4, dtype=np.float64), SHAPES),
            Factor("orientation", np.linspace(-30.0, 30.0, 15)),
        )
        name = f"shapes3d_procedural-r{resolution}-v{RENDER_VERSION}.npy"
        self.path = (cache or cache_dir()) / name
        self._layers: np.ndarray | None = None
        self._rgb = hue_rgb(HUES)  # (10, 3)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    # -- rendering ---------------------------------------------------------------------------
    def render_layers(self) -> np.ndarray:
        """Ray cast every (scale, shape, orientation): uint8 ``(480, 3, R, R)``, ``round(255 v)``.

        Row ``(scale * 4 + shape) * 15 + orientation`` holds ``(S, (1 - a) F, (1 - a) W)``: the
        weights of the object, floor and wall colours in each pixel (see the module docstring).
        """
        r = self.resolution
        k = math.ceil(256 / r)
        scales, angles = self.factors[3].values, self.factors[5].values
        layers = np.zeros((len(scales), len(SHAPES), len(angles), 3, r, r), dtype=np.float32)
        for o, angle in enumerate(angles):
            origin, rays = scene3d.Camera.orbiting(float(angle)).rays(r * k)  # (3,), (rk*rk, 3)
            floor_wall = scene3d.pool(scene3d.background(origin, rays), r, k)  # (2, R, R)
            for sc, scale in enumerate(scales):
                for sh in range(len(SHAPES)):
                    a, s = scene3d.pool(scene3d.object_layer(sh, float(scale), origin, rays), r, k)
                    layers[sc, sh, o] = np.concatenate([s[None], (1.0 - a) * floor_wall])
        return np.rint(layers.reshape(-1, 3, r, r) * UINT8_MAX).astype(np.uint8)

    def render(self) -> Path:
        """Render the layers into the cache (atomically) unless they are there; return its path."""
        return save_atomically(self.path, self.render_layers)

    @property
    def layers(self) -> np.ndarray:
        """The cached layers ``(480, 3, R, R)`` uint8, memory-mapped read-only."""
        if self._layers is None:
            self._layers = np.load(self.render(), mmap_mode="r")
        return self._layers

    def layer_of(self, classes: np.ndarray) -> np.ndarray:
        """Row of :attr:`layers` ``(n,)`` of factor classes ``(n, 6)``: their last three factors."""
        return classes[:, 3:] @ self.strides[3:]

    # -- reading -----------------------------------------------------------------------------
    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Images ``(n, 3, R, R)``: uint8 levels 0..255, or ``dtype`` floats ``levels / 255``.

        Per image, ``x = C @ L``: the colours ``C`` ``(3 channels, 3 surfaces)`` of its three hues
        times its layer ``L`` ``(3 surfaces, R * R)``, one small matrix product per image.
        """
        cls = self.classes_of(np.asarray(index, dtype=np.int64).reshape(-1))
        n, r = len(cls), self.resolution
        weights = self.layers[self.layer_of(cls)].reshape(n, 3, r * r).astype(np.float32)
        colours = self._rgb[cls[:, [2, 0, 1]]].transpose(0, 2, 1)  # (n, channel, surface)
        x = np.matmul(colours, weights)  # (n, 3, R * R), 255 * value
        np.clip(np.rint(x, out=x), 0, UINT8_MAX, out=x)  # three rounded weights may sum to 256
        return from_uint8(x.astype(np.uint8).reshape(n, 3, r, r), dtype)

    def __getstate__(self) -> dict:  # ship the path, not the memory map, to Ray workers
        state = dict(self.__dict__)
        state["_layers"] = None
        return state


def subgrid_indices(data: GroundTruthData, keep: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Sorted flat indices ``(m,)`` of the product sub-grid keeping, per named factor, the classes
    ``keep[name]`` (every class of a factor not named): a reduced but complete grid."""
    unknown = set(keep) - set(data.factor_names)
    if unknown:
        raise ValueError(f"unknown factors {sorted(unknown)}; "
                         f"choose from {', '.join(data.factor_names)}")
    axes = [np.unique(np.asarray(keep.get(f.name, range(f.size)), dtype=np.int64))
            for f in data.factors]
    classes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    return data.index_of(classes)


def write_h5(
    path: str | Path,
    resolution: int = 64,
    *,
    indices: np.ndarray | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write the grid in the ``3dshapes.h5`` layout and return ``path``.

    Datasets: ``images`` ``(N, R, R, 3)`` uint8 (channels last, as published) and ``labels``
    ``(N, 6)`` float64, the factor values in 3dshapes' order and units. ``N`` is 480,000 in
    index order unless ``indices`` names a subset (e.g. :func:`subgrid_indices`, for small test
    files of a reduced grid). Written through a temporary file in the same folder, so a reader
    never sees half a file; HDF5 chunks hold about 1 MiB of images.
    """
    import h5py  # only this writer needs it

    data = Shapes3DProcedural(resolution=resolution)
    index = np.arange(data.num_images) if indices is None else np.asarray(indices, dtype=np.int64)
    block = max(1, min(len(index), 2**20 // (3 * resolution * resolution)))

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset(
                "images", (len(index), resolution, resolution, 3), dtype=np.uint8,
                chunks=(block, resolution, resolution, 3) if len(index) else None,
                compression=compression if len(index) else None,
            )
            labels = f.create_dataset("labels", (len(index), 6), dtype=np.float64)
            for start in range(0, len(index), 16 * block):
                part = index[start : start + 16 * block]
                channels_last = data.images_at(part, np.uint8).transpose(0, 2, 3, 1)
                images[start : start + len(part)] = channels_last
                labels[start : start + len(part)] = data.factor_values(data.classes_of(part))

    return write_atomically(Path(path), write)


@DATASETS.register("shapes3d_procedural")
def make_shapes3d_procedural(
    *, resolution: int, path: str | Path | None = None
) -> Shapes3DProcedural:
    refuse_path("shapes3d_procedural", path)
    return Shapes3DProcedural(resolution=resolution)
