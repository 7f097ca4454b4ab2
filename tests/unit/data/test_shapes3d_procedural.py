import pickle

import h5py
import numpy as np
import pytest

from disentune.data.grid import grid_from_labels
from disentune.data.shapes3d_procedural import (
    SHAPES,
    Shapes3DProcedural,
    hue_rgb,
    subgrid_indices,
    write_h5,
)
from disentune.errors import UserError
from disentune.registry import DATASETS

NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")


@pytest.fixture(scope="module")
def shapes32(disentune_cache):
    data = Shapes3DProcedural(resolution=32)
    data.render()
    return data


@pytest.fixture(scope="module")
def shapes16(disentune_cache):
    data = Shapes3DProcedural(resolution=16)
    data.render()
    return data


def layers(data: Shapes3DProcedural) -> np.ndarray:
    """(scale, shape, orientation, surface, R, R) int: the S, (1-a)F, (1-a)W weights, 0..255."""
    r = data.resolution
    return np.asarray(data.layers).reshape(8, 4, 15, 3, r, r).astype(np.int64)


def test_factor_grid_is_shapes3d():
    d = Shapes3DProcedural(resolution=16)
    assert d.num_images == 480_000 and d.image_shape == (3, 16, 16) and d.uint8_max == 255
    assert d.factor_names == NAMES
    np.testing.assert_array_equal(d.factor_sizes, [10, 10, 10, 8, 4, 15])
    np.testing.assert_array_equal(d.strides, [48_000, 4_800, 480, 60, 15, 1])
    for k in range(3):
        np.testing.assert_allclose(d.factors[k].values, np.arange(10) / 10)
    np.testing.assert_allclose(d.factors[3].values, np.linspace(0.75, 1.25, 8))
    np.testing.assert_array_equal(d.factors[4].values, [0, 1, 2, 3])
    assert d.factors[4].labels == SHAPES == ("cube", "cylinder", "sphere", "capsule")
    np.testing.assert_allclose(d.factors[5].values, np.linspace(-30, 30, 15))
    assert d.index_of(np.array([[9, 9, 9, 7, 3, 14]]))[0] == d.num_images - 1
    for bad in (8, 15, 129):
        with pytest.raises(ValueError, match="resolution"):
            Shapes3DProcedural(resolution=bad)


def test_hue_colours_are_hsv_with_full_saturation_and_value():
    rgb = hue_rgb(np.arange(10) / 10)
    np.testing.assert_allclose(rgb[0], [1, 0, 0])  # red
    np.testing.assert_allclose(rgb[5], [0, 1, 1])  # cyan
    np.testing.assert_allclose(rgb.max(axis=1), 1.0)  # V = 1
    np.testing.assert_allclose(rgb.min(axis=1), 0.0)  # S = 1
    assert len(np.unique(rgb, axis=0)) == 10


def test_images_are_deterministic_in_any_batch_order(shapes32):
    d = shapes32
    idx = np.random.default_rng(0).integers(0, d.num_images, 300)
    x = d.images_at(idx, dtype=np.uint8)
    assert x.shape == (300, 3, 32, 32) and x.dtype == np.uint8
    perm = np.random.default_rng(1).permutation(300)
    np.testing.assert_array_equal(d.images_at(idx[perm], dtype=np.uint8), x[perm])
    np.testing.assert_array_equal(np.concatenate([d.images_at(idx[i:i + 7], np.uint8)
                                                  for i in range(0, 300, 7)]), x)
    np.testing.assert_array_equal(Shapes3DProcedural(resolution=32).images_at(idx, np.uint8), x)
    shipped = pickle.dumps(d)  # to a Ray worker: the cache's path, not its memory map
    assert len(shipped) < 10_000
    np.testing.assert_array_equal(pickle.loads(shipped).images_at(idx, np.uint8), x)
    f = d.images_at(idx)  # float32 = levels / 255 exactly, as the cache's readers
    assert f.dtype == np.float32 and 0.0 <= f.min() and f.max() <= 1.0
    np.testing.assert_array_equal(f, np.divide(x, 255.0, dtype=np.float32))
    np.testing.assert_array_equal(d.images(d.classes_of(idx)), f)
    # a fresh render equals the cached one
    np.testing.assert_array_equal(d.render_layers(), np.asarray(d.layers))


@pytest.mark.parametrize("k, surface", [(0, 1), (1, 2), (2, 0)])  # floor, wall, object hue
def test_a_hue_changes_only_its_own_surface(shapes32, k, surface):
    d, lay = shapes32, layers(shapes32)
    rng = np.random.default_rng(k)
    base = d.sample_factors(40, rng)
    other = base.copy()
    other[:, k] = (base[:, k] + rng.integers(1, 10, 40)) % 10
    changed = (d.images(base) != d.images(other)).any(axis=1)  # (n, R, R)
    weight = lay[base[:, 3], base[:, 4], base[:, 5], surface]  # (n, R, R) that surface's weight
    assert changed.any(axis=(1, 2)).all()
    assert not (changed & (weight == 0)).any()  # nothing changes where the surface is not seen
    assert changed[weight >= 128].all()  # and every pixel that mostly shows it changes


def test_scale_and_shape_change_only_the_object_neighbourhood(shapes32):
    d, lay = shapes32, layers(shapes32)
    rng = np.random.default_rng(3)
    for k in (3, 4):
        base = d.sample_factors(40, rng)
        other = base.copy()
        other[:, k] = (base[:, k] + rng.integers(1, d.factor_sizes[k], 40)) % d.factor_sizes[k]
        changed = (d.images(base) != d.images(other)).any(axis=1)
        seen = ((lay[base[:, 3], base[:, 4], base[:, 5], 0] > 0)
                | (lay[other[:, 3], other[:, 4], other[:, 5], 0] > 0))  # either object's pixels
        rows, cols = seen.any(axis=2), seen.any(axis=1)  # (n, R): the union's bounding box
        box = np.zeros_like(seen)
        for i in range(len(base)):
            r, c = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
            box[i, max(r[0] - 1, 0):r[-1] + 2, max(c[0] - 1, 0):c[-1] + 2] = True
        assert changed.any(axis=(1, 2)).all()
        assert not (changed & ~box).any()


def test_scene_looks_like_3dshapes(shapes32):
    lay = layers(shapes32)  # (scale, shape, orientation, surface, R, R)
    obj, floor, wall = lay[:, :, :, 0], lay[:, :, :, 1], lay[:, :, :, 2]
    # floor along the bottom edge, wall along the top, in every image; the object in between
    assert (floor[..., -1, :] > 0).all() and (wall[..., -1, :] == 0).all()
    assert (wall[..., 0, :] > 0).all() and (floor[..., 0, :] == 0).all()
    assert not (obj[..., :4, :] > 0).any() and not (obj[..., -4:, :] > 0).any()
    # the object stands in the middle and grows with scale, for every shape and orientation
    seen = obj > 0
    cx = (seen.sum(axis=-2) * np.arange(32)).sum(axis=-1) / seen.sum(axis=(-1, -2))
    assert (np.abs(cx - 15.5) < 2).all()
    assert (np.diff(obj.sum(axis=(-1, -2)), axis=0) > 0).all()
    # the view turns: the room's corner (the step between the two walls' shading along the top
    # row) moves left to right as the orientation goes from -30 to 30 degrees
    top = wall[0, 2, :, 0, :]  # (orientation, column), small sphere
    corner = np.abs(np.diff(top, axis=1)).argmax(axis=1)
    assert (np.diff(corner) > 0).all() and corner[0] < 6 and corner[-1] > 25
    # and the floor-wall line is highest at the corner (the far end of the room)
    horizon = (floor[0, 2] > wall[0, 2]).argmax(axis=1)  # (orientation, column): first floor row
    for o in (4, 7, 10):
        assert horizon[o, corner[o]] < horizon[o].max()


@pytest.mark.parametrize("resolution", [16, 32])
def test_factor_combinations_give_distinct_images(resolution, request):
    d = request.getfixturevalue(f"shapes{resolution}")
    lay = layers(d)
    assert len(np.unique(lay.reshape(480, -1), axis=0)) == 480  # every (scale, shape, orientation)
    rng = np.random.default_rng(resolution)
    a, b = rng.integers(0, d.num_images, (2, 3000))
    b = np.where(a == b, (b + 1) % d.num_images, b)
    differ = (d.images_at(a, np.uint8) != d.images_at(b, np.uint8)).any(axis=(1, 2, 3))
    assert differ.all()
    base = d.sample_factors(100, rng)  # and pairs that differ in one factor only
    for k, size in enumerate(d.factor_sizes):
        other = base.copy()
        other[:, k] = (base[:, k] + rng.integers(1, size, 100)) % size
        assert (d.images(base) != d.images(other)).any(axis=(1, 2, 3)).all(), NAMES[k]


@pytest.fixture(scope="module")
def full_h5(tmp_path_factory, shapes16):
    return write_h5(tmp_path_factory.mktemp("h5") / "3dshapes.h5", resolution=16)


def test_write_h5_has_the_published_layout(full_h5, shapes16):
    with h5py.File(full_h5, "r") as f:
        assert set(f.keys()) == {"images", "labels"}
        images, labels = f["images"], f["labels"][:]
        assert images.shape == (480_000, 16, 16, 3) and images.dtype == np.uint8
        assert labels.shape == (480_000, 6) and labels.dtype == np.float64
        idx = np.sort(np.random.default_rng(0).choice(480_000, 200, replace=False))
        expected = shapes16.images_at(idx, np.uint8).transpose(0, 2, 3, 1)  # channels last
        np.testing.assert_array_equal(images[idx], expected)
    np.testing.assert_array_equal(labels[0], [0, 0, 0, 0.75, 0, -30])
    np.testing.assert_array_equal(labels[-1], [0.9, 0.9, 0.9, 1.25, 3, 30])
    every = shapes16.classes_of(np.arange(480_000))
    np.testing.assert_array_equal(labels, shapes16.factor_values(every))
    grid = grid_from_labels(labels, NAMES, "3dshapes.h5")  # the readers' grid check
    assert grid.dest is None  # in grid order: the cache can be the file's rows
    np.testing.assert_array_equal([f.size for f in grid.factors], [10, 10, 10, 8, 4, 15])


def test_write_h5_of_a_reduced_grid(tmp_path, shapes16):
    keep = {"floor_hue": [0, 7], "wall_hue": [3], "scale": [0, 7], "orientation": [0, 7, 14]}
    idx = subgrid_indices(shapes16, keep)
    assert len(idx) == 2 * 1 * 10 * 2 * 4 * 3 and (np.diff(idx) > 0).all()
    path = write_h5(tmp_path / "small.h5", resolution=16, indices=idx, compression=None)
    assert not list(tmp_path.glob("*.part"))
    with h5py.File(path, "r") as f:
        expected = shapes16.images_at(idx, np.uint8).transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(f["images"][:], expected)
        labels = f["labels"][:]
    grid = grid_from_labels(labels, NAMES, "small.h5")
    assert grid.dest is None
    np.testing.assert_allclose(grid.factors[0].values, [0.0, 0.7])
    np.testing.assert_allclose(grid.factors[5].values, [-30.0, 0.0, 30.0])
    with pytest.raises(ValueError, match="unknown factors"):
        subgrid_indices(shapes16, {"colour": [0]})


def test_registered_and_refuses_a_path():
    data = DATASETS.get("shapes3d_procedural")(resolution=16)
    assert isinstance(data, Shapes3DProcedural) and data.resolution == 16
    with pytest.raises(UserError, match="shapes3d_procedural.*reads no file") as err:
        DATASETS.get("shapes3d_procedural")(resolution=16, path="/data/3dshapes.h5")
    assert "\n" not in str(err.value)


def test_the_shapes3d_reader_reads_what_write_h5_writes(cache, tmp_path, shapes16):
    keep = {"floor_hue": [2, 5], "object_hue": [0, 9], "orientation": [3, 11]}
    idx = subgrid_indices(shapes16, keep)
    path = write_h5(tmp_path / "3dshapes.h5", resolution=16, indices=idx)
    read = DATASETS.get("shapes3d")(resolution=16, path=str(path))
    assert read.factor_names == NAMES and read.num_images == len(idx)
    np.testing.assert_array_equal(read.factor_sizes, [2, 10, 2, 8, 4, 2])
    np.testing.assert_allclose(read.factors[5].values, [-30 + 60 * 3 / 14, -30 + 60 * 11 / 14])
    np.testing.assert_array_equal(read.images_at(np.arange(len(idx)), np.uint8),
                                  shapes16.images_at(idx, np.uint8))
