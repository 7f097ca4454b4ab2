"""Writers of small files in exactly the published layouts (same keys, dtypes and byte layout,
reduced factor grids where the reader derives the grid from the labels), and the reference
resize the tests compare the cache with, computed independently of data/resize.py; and what a
failed conversion could leave behind."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def reference_resize(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 ``(n, H, W, C)`` -> ``(n, C, R, R)``: torch's area interpolation in float64, rounded
    half up (the documented rule)."""
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).double()
    out = F.interpolate(x, size=(resolution, resolution), mode="area")
    return torch.floor(out + 0.5).to(torch.uint8).numpy()


def full_grid(sizes: tuple[int, ...]) -> np.ndarray:
    """Every class combination ``(prod(sizes), K)`` in row-major order (last fastest)."""
    return np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))


# -- dSprites: dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz -----------------------------------
DSPRITES_SIZES = (3, 2, 3, 4, 4)  # shape, scale, orientation, pos_x, pos_y (reduced)


def write_dsprites(path: Path, rng: np.random.Generator, *, order: np.ndarray | None = None) -> dict:
    classes = np.concatenate([np.zeros((288, 1), np.int64), full_grid(DSPRITES_SIZES)], axis=1)
    values = np.stack([np.ones(288), classes[:, 1] + 1.0, np.linspace(0.5, 1, 6)[classes[:, 2]],
                       np.linspace(0, 2 * np.pi, 40)[classes[:, 3]], np.linspace(0, 1, 32)[classes[:, 4]],
                       np.linspace(0, 1, 32)[classes[:, 5]]], axis=1)
    imgs = (rng.random((288, 64, 64)) < 0.3).astype(np.uint8)
    if order is not None:
        classes, values, imgs = classes[order], values[order], imgs[order]
    metadata = np.array({"description": "a pickled dict, as published"}, dtype=object)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata)
    return {"imgs": imgs, "latents_classes": classes, "latents_values": values}


# -- 3D Shapes: 3dshapes.h5 ---------------------------------------------------------------------
SHAPES3D_SIZES = (2, 3, 2, 2, 2, 3)
SHAPES3D_VALUES = (np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
                   np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15))


def write_shapes3d(path: Path, rng: np.random.Generator, *, order: np.ndarray | None = None,
                   drop: int = 0) -> dict:
    import h5py

    grid = full_grid(SHAPES3D_SIZES)
    labels = np.stack([SHAPES3D_VALUES[k][grid[:, k]] for k in range(6)], axis=1)
    images = rng.integers(0, 256, (len(grid), 64, 64, 3), dtype=np.uint8)
    if order is not None:
        labels, images = labels[order], images[order]
    if drop:
        labels, images = labels[drop:], images[drop:]
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(8, 64, 64, 3), compression="gzip")
        f.create_dataset("labels", data=labels)
    return {"images": images, "labels": labels}


# -- MPI3D: mpi3d_toy.npz (older layout, 460,800 images, real length) ----------------------------
MPI3D_OLD = 460_800


def write_mpi3d_zeros(path: Path, rng: np.random.Generator, marked: np.ndarray) -> np.ndarray:
    """A deflated npz whose ``images`` ``(460800, 64, 64, 3)`` are zero except at ``marked`` rows
    (random pixels, returned), streamed so the 5.7 GB member is never in memory."""
    shape = (MPI3D_OLD, 64, 64, 3)
    marked_images = rng.integers(0, 256, (len(marked), 64, 64, 3), dtype=np.uint8)
    step = 1024
    zeros = bytes(step * 64 * 64 * 3)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open("images.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        for start in range(0, MPI3D_OLD, step):  # 460,800 = 450 x 1024
            hit = (marked >= start) & (marked < start + step)
            if not hit.any():
                f.write(zeros)
                continue
            block = np.zeros((step, 64, 64, 3), np.uint8)
            block[marked[hit] - start] = marked_images[hit]
            f.write(block.tobytes())
    return marked_images


# -- SmallNORB: the six binary matrix files ------------------------------------------------------
NORB_PREFIX = {"training": "smallnorb-5x46789x9x18x6x2x96x96-training",
               "testing": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
NORB_INSTANCES = {"training": (4, 6), "testing": (0, 1)}  # reduced: 2 instances per split
NORB_SIZES = (2, 2, 3, 2)  # category, elevation, azimuth (values 0, 2, 4), lighting


def write_matrix(path: Path, array: np.ndarray) -> None:
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54}[array.dtype]
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([magic, array.ndim, *dims], dtype="<i4")
    path.write_bytes(header.tobytes() + np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())


def write_smallnorb(folder: Path, rng: np.random.Generator) -> dict:
    """Returns per split: ``dat`` (n, 2, 96, 96), ``labels`` (n, 5) category, elevation, azimuth,
    lighting, instance (the file rows, shuffled as published)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix in NORB_PREFIX.items():
        grid = full_grid((*NORB_SIZES, 2))
        instance = np.array(NORB_INSTANCES[split])[grid[:, 4]]
        labels = np.column_stack([grid[:, 0], grid[:, 1], 2 * grid[:, 2], grid[:, 3], instance])
        labels = labels[rng.permutation(len(labels))]
        dat = rng.integers(0, 256, (len(labels), 2, 96, 96), dtype=np.uint8)
        write_matrix(folder / f"{prefix}-dat.mat", dat)
        write_matrix(folder / f"{prefix}-cat.mat", labels[:, 0].astype(np.int32))
        info = np.column_stack([labels[:, 4], labels[:, 1], labels[:, 2], labels[:, 3]]).astype(np.int32)
        write_matrix(folder / f"{prefix}-info.mat", info)
        out[split] = {"dat": dat, "labels": labels}
    return out


# -- Cars3D: car_*_mesh.mat ----------------------------------------------------------------------
def write_cars3d(folder: Path, rng: np.random.Generator, objects: int = 3) -> list[np.ndarray]:
    """``objects`` files with ``im`` uint8 (128, 128, 3, 24, 4); returns the arrays in file order."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for o in range(objects):
        im = rng.integers(0, 256, (128, 128, 3, 24, 4), dtype=np.uint8)
        savemat(folder / f"car_{o + 1:03d}_mesh.mat", {"im": im})
        arrays.append(im)
    return arrays


def leftovers(imported: Path) -> list[str]:
    """Anything a failed conversion could have left: partial files, entries, staged copies."""
    if not imported.exists():
        return []
    names = [p.name for p in imported.iterdir() if p.suffix in (".npy", ".json", ".part")]
    staging = imported / "staging"
    if staging.exists():
        names += [str(p) for p in staging.rglob("*") if p.is_file()]
    return sorted(names)
