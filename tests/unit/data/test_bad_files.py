"""A bad file is refused in one line naming it, and leaves nothing in the cache: a missing key,
a wrong dtype or shape, a truncated file, an incomplete or repeated grid, an object array that
would need unpickling, a wrong length, a missing SmallNORB file, a failure found halfway."""

from __future__ import annotations

import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from disentune.errors import UserError
from disentune.registry import DATASETS

from .published import (NORB_PREFIX, leftovers, write_cars3d, write_dsprites, write_matrix,
                        write_shapes3d, write_smallnorb)


def refused(cache: Path, dataset: str, path: Path, *, resolution: int = 16) -> str:
    """The one-line message of a refused conversion; checks that it names ``path`` and that the
    cache holds no entry, partial file or staged copy afterwards."""
    with pytest.raises(UserError) as err:
        DATASETS.get(dataset)(resolution=resolution, path=str(path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message
    assert leftovers(cache) == []
    return message


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_dsprites_file_refusals(cache, rng, tmp_path):
    good = tmp_path / "good.npz"
    written = write_dsprites(good, rng)
    no_classes = tmp_path / "no_classes.npz"
    np.savez_compressed(no_classes, imgs=written["imgs"])
    assert "no array 'latents_classes'" in refused(cache, "dsprites_file", no_classes)
    pickled = tmp_path / "pickled.npz"  # imgs as an object array: loading it would unpickle
    np.savez(pickled, imgs=np.array(list(written["imgs"]), dtype=object), latents_classes=written["latents_classes"])
    assert "unpickling" in refused(cache, "dsprites_file", pickled)
    wide = tmp_path / "wide.npz"
    np.savez(wide, imgs=written["imgs"].astype(np.int16), latents_classes=written["latents_classes"])
    assert "imgs must be uint8, got int16" in refused(cache, "dsprites_file", wide)
    grey = tmp_path / "grey.npz"
    np.savez(grey, imgs=written["imgs"] * np.uint8(7), latents_classes=written["latents_classes"])
    assert "must hold 0 or 1" in refused(cache, "dsprites_file", grey)  # found while converting
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes())
    truncate(cut)
    assert "truncated or corrupt" in refused(cache, "dsprites_file", cut)


def test_shapes3d_refusals(cache, rng, tmp_path):
    missing = tmp_path / "missing.h5"
    write_shapes3d(missing, rng, drop=12)
    message = refused(cache, "shapes3d", missing)
    assert "incomplete grid: 12 of 144 factor combinations missing, e.g. floor_hue=0, wall_hue=0," in message
    repeated = tmp_path / "repeated.h5"
    written = write_shapes3d(repeated, rng)
    with h5py.File(repeated, "r+") as f:
        labels = f["labels"][()]
        labels[1] = labels[0]
        f["labels"][...] = labels
    assert "factor combinations missing, e.g. floor_hue=0, wall_hue=0, object_hue=0, scale=0.75, shape=0, " \
           "orientation=-25.7143" in refused(cache, "shapes3d", repeated)
    nolabels = tmp_path / "nolabels.h5"
    with h5py.File(nolabels, "w") as f:
        f["images"] = written["images"]
    assert "no dataset 'labels' (it has images)" in refused(cache, "shapes3d", nolabels)
    floats = tmp_path / "floats.h5"
    with h5py.File(floats, "w") as f:
        f["images"], f["labels"] = written["images"].astype(np.float32), written["labels"]
    assert "images must be uint8, got float32" in refused(cache, "shapes3d", floats)
    gray = tmp_path / "gray.h5"
    with h5py.File(gray, "w") as f:
        f["images"], f["labels"] = written["images"][..., 0], written["labels"]
    assert "images must be (n, H, H, 3) RGB, got shape (144, 64, 64)" in refused(cache, "shapes3d", gray)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(repeated.read_bytes())
    truncate(cut, 0.3)
    assert "truncated or corrupt" in refused(cache, "shapes3d", cut)
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    assert "is a folder" in refused(cache, "shapes3d", folder)
    assert "no such file or folder" in refused(cache, "shapes3d", tmp_path / "absent.h5")


def test_mpi3d_refusals(cache, rng, tmp_path):
    short = tmp_path / "mpi3d_toy.npz"
    np.savez(short, images=np.zeros((1000, 64, 64, 3), np.uint8))
    assert "1,000 images; MPI3D has 1,036,800" in refused(cache, "mpi3d", short)
    named = tmp_path / "mpi3d_real.npz"
    np.savez(named, imgs=np.zeros((4, 64, 64, 3), np.uint8))
    assert "no array 'images' (it has imgs)" in refused(cache, "mpi3d", named)
    fortran = tmp_path / "fortran.npz"
    np.savez(fortran, images=np.asfortranarray(np.zeros((460_800, 2, 2, 3), np.uint8)))
    assert "Fortran order" in refused(cache, "mpi3d", fortran)
    not_zip = tmp_path / "mpi3d_realistic.npz"
    not_zip.write_bytes(b"\x93NUMPY this is an .npy, not an .npz")
    assert "not a readable .npz" in refused(cache, "mpi3d", not_zip)


def test_smallnorb_refusals(cache, rng, tmp_path):
    folder = tmp_path / "norb"
    write_smallnorb(folder, rng)
    dat = folder / f"{NORB_PREFIX['testing']}-dat.mat"
    good = dat.read_bytes()
    truncate(dat, 0.9)
    message = refused(cache, "smallnorb", folder)
    assert f"{dat}: truncated: " in message
    write_matrix(dat, np.zeros((48, 96, 96), np.uint8))  # one camera: not (n, 2, H, W)
    assert "expected a uint8 (n, 2, H, W) matrix, got uint8 (48, 96, 96)" in refused(cache, "smallnorb", folder)
    write_matrix(dat, np.zeros((48, 2, 96, 96), np.int32))
    assert f"{dat}: expected a uint8" in refused(cache, "smallnorb", folder)
    dat.write_bytes(good)
    info = folder / f"{NORB_PREFIX['training']}-info.mat"
    info.write_bytes(b"\x00" * 64)
    assert f"{info}: not a SmallNORB matrix file" in refused(cache, "smallnorb", folder)
    info.unlink()
    message = refused(cache, "smallnorb", folder)
    assert "missing the SmallNORB file(s) smallnorb-*-training-info.mat" in message


def test_cars3d_refusals(cache, rng, tmp_path):
    folder = tmp_path / "cars"
    write_cars3d(folder, rng, objects=2)
    second = folder / "car_002_mesh.mat"
    good = second.read_bytes()
    truncate(second)
    assert f"{second}: not a readable MATLAB v5 .mat file" in refused(cache, "cars3d", folder)
    from scipy.io import savemat

    savemat(second, {"im": np.zeros((128, 128, 3, 24, 3), np.uint8)})
    assert "im must be (H, H, 3, 24, 4), got (128, 128, 3, 24, 3)" in refused(cache, "cars3d", folder)
    savemat(second, {"img": np.zeros(3)})
    assert f"{second}: no variable 'im'" in refused(cache, "cars3d", folder)
    second.write_bytes(good)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no car_*_mesh.mat files" in refused(cache, "cars3d", empty)


def test_a_failure_found_halfway_leaves_no_partial_file(cache, tmp_path):
    path = tmp_path / "faces.npz"
    images = np.zeros((1400, 64, 64, 3), np.float32)  # three chunks of 32 MiB of source pixels
    images[-1, 0, 0, 0] = np.nan
    np.savez_compressed(path, images=images)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("images.npy").compress_type == zipfile.ZIP_DEFLATED
    assert "float images must lie in [0, 1]" in refused(cache, "images", path)
