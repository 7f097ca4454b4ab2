"""Each published format, written in its exact layout, converts into the cache and reads back as
the file's pixels after the documented resize, on the documented factor grid."""

from __future__ import annotations

import math

import numpy as np

from disentune.data.cached import CachedGroundTruth
from disentune.data.dsprites import SHAPES
from disentune.registry import DATASETS

from .published import (DSPRITES_SIZES, NORB_SIZES, SHAPES3D_SIZES, SHAPES3D_VALUES, reference_resize,
                        write_cars3d, write_dsprites, write_shapes3d, write_smallnorb)


def test_dsprites_file_round_trip_reorders_rows_through_the_classes(cache, rng, tmp_path):
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    written = write_dsprites(path, rng, order=rng.permutation(288))
    data = DATASETS.get("dsprites_file")(resolution=32, path=str(path))
    assert isinstance(data, CachedGroundTruth) and data.uint8_max == 255
    assert data.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    np.testing.assert_array_equal(data.factor_sizes, DSPRITES_SIZES)
    assert data.factors[0].labels == SHAPES
    np.testing.assert_allclose(data.factors[1].values, np.linspace(0.5, 1, 6)[:2])
    np.testing.assert_allclose(data.factors[2].values, np.linspace(0, 2 * math.pi, 40)[:3])
    classes = written["latents_classes"][:, 1:]
    expected = reference_resize(written["imgs"][..., None] * np.uint8(255), 32)
    got = data.images_at(data.index_of(classes), dtype=np.uint8)
    assert got.shape == (288, 1, 32, 32) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(data.images(classes[:10]), expected[:10] / 255.0, rtol=0, atol=1e-7)
    assert data.entry.images == 288 and data.entry.channels == 1 and data.entry.resolution == 32


def test_shapes3d_round_trip_in_order_is_the_file_and_shuffled_is_reordered(cache, rng, tmp_path):
    path = tmp_path / "3dshapes.h5"
    written = write_shapes3d(path, rng)
    data = DATASETS.get("shapes3d")(resolution=64, path=str(path))
    assert data.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    np.testing.assert_array_equal(data.factor_sizes, SHAPES3D_SIZES)
    for k, factor in enumerate(data.factors):  # values: the labels' sorted unique values
        np.testing.assert_array_equal(factor.values, SHAPES3D_VALUES[k][: SHAPES3D_SIZES[k]])
    np.testing.assert_array_equal(data.images_at(np.arange(data.num_images), np.uint8),
                                  written["images"].transpose(0, 3, 1, 2))

    shuffled = tmp_path / "shuffled" / "3dshapes.h5"
    shuffled.parent.mkdir()
    order = rng.permutation(len(written["images"]))
    write_shapes3d(shuffled, np.random.default_rng(0), order=order)  # same pixels, rows permuted
    again = DATASETS.get("shapes3d")(resolution=16, path=str(shuffled))
    np.testing.assert_array_equal(again.images_at(np.arange(again.num_images), np.uint8),
                                  reference_resize(written["images"], 16))


def test_smallnorb_joins_both_splits_keeps_camera_0_and_stores_the_instance_fastest(cache, rng, tmp_path):
    folder = tmp_path / "norb"
    written = write_smallnorb(folder, rng)
    data = DATASETS.get("smallnorb")(resolution=64, path=str(folder))
    assert data.factor_names == ("category", "elevation", "azimuth", "lighting")
    np.testing.assert_array_equal(data.factor_sizes, NORB_SIZES)
    np.testing.assert_array_equal(data.factors[2].values, [0, 2, 4])
    assert data.nuisance_size == 4 and data.num_images == 2 * 48 and data.image_shape == (1, 64, 64)
    instances = np.array([0, 1, 4, 6])  # sorted over both splits
    for split in ("training", "testing"):
        labels, dat = written[split]["labels"], written[split]["dat"]
        public = np.column_stack([labels[:, 0], labels[:, 1], labels[:, 2] // 2, labels[:, 3]])
        index = (public @ data.strides) * 4 + np.searchsorted(instances, labels[:, 4])
        np.testing.assert_array_equal(data.images_at(index, np.uint8), reference_resize(dat[:, 0, :, :, None], 64))
        np.testing.assert_array_equal(data.classes_of(index), public)
    drawn = data.index_of(data.sample_factors(200, rng), rng)
    assert len(set(data.nuisance_of(drawn).tolist())) == 4


def test_cars3d_grid_is_elevation_azimuth_object(cache, rng, tmp_path):
    folder = tmp_path / "cars"
    arrays = write_cars3d(folder, rng, objects=3)
    data = DATASETS.get("cars3d")(resolution=64, path=str(folder))
    assert data.factor_names == ("elevation", "azimuth", "object")
    np.testing.assert_array_equal(data.factor_sizes, [4, 24, 3])
    assert data.factors[2].labels == ("car_001_mesh", "car_002_mesh", "car_003_mesh")
    classes = np.array([[0, 0, 0], [3, 23, 2], [1, 5, 1], [2, 17, 0]])
    got = data.images(classes)
    for (e, a, o), image in zip(classes, got):
        expected = reference_resize(arrays[o][:, :, :, a, e][None], 64)[0]
        np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), expected)
    assert got.dtype == np.float32 and got.shape == (4, 3, 64, 64)
