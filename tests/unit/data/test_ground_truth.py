"""The data interface: image collections, factor grids with a nuisance variable stored fastest,
and the registered constructors' ``resolution`` / ``path`` keywords."""

from __future__ import annotations

import numpy as np
import pytest

from disentune.data.ground_truth import (Factor, GroundTruthData, ImageData, Region, excluded_mask,
                                         training_indices)
from disentune.errors import ConfigError, UserError
from disentune.registry import DATASETS


class Grid(GroundTruthData):
    """Factors a (2) and b (3), nuisance of 4 values; image i is filled with the value i."""

    def __init__(self, nuisance: int = 4) -> None:
        self.factors = (Factor("a", np.array([0.0, 1.0]), ("left", "right")), Factor("b", np.arange(3.0)))
        self.nuisance_size = nuisance

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 2, 2)

    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        index = np.asarray(index)
        return np.broadcast_to(index[:, None, None, None], (len(index), 1, 2, 2)).astype(dtype)


class Collection(ImageData):
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, 4, 4)

    @property
    def num_images(self) -> int:
        return 10

    def images_at(self, index: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        return np.zeros((len(index), 3, 4, 4), dtype)


def test_a_nuisance_variable_is_stored_fastest_and_hidden_from_the_factors():
    d = Grid()
    assert d.num_images == 2 * 3 * 4 and d.has_factors
    np.testing.assert_array_equal(d.strides, [3, 1])
    index = np.arange(d.num_images)
    classes = d.classes_of(index)
    assert classes.shape == (24, 2)
    # flat index = public index * nuisance_size + nuisance
    np.testing.assert_array_equal(classes @ d.strides * 4 + d.nuisance_of(index), index)
    np.testing.assert_array_equal(d.index_of(np.array([[1, 2], [0, 1]])), [(1 * 3 + 2) * 4, 1 * 4])


def test_index_of_draws_the_nuisance_from_rng_and_keeps_the_classes():
    d = Grid()
    rng = np.random.default_rng(3)
    classes = d.sample_factors(500, rng)
    drawn = d.index_of(classes, rng)
    np.testing.assert_array_equal(d.classes_of(drawn), classes)
    assert set(d.nuisance_of(drawn).tolist()) == {0, 1, 2, 3}
    assert (d.nuisance_of(d.index_of(classes)) == 0).all()
    images = d.images(classes[:5], np.random.default_rng(4))
    np.testing.assert_array_equal(d.classes_of(images[:, 0, 0, 0].astype(np.int64)), classes[:5])
    np.testing.assert_array_equal(d.images(classes[:5])[:, 0, 0, 0], d.index_of(classes[:5]))


def test_without_a_nuisance_the_grid_is_unchanged():
    d = Grid(nuisance=1)
    assert d.num_images == 6
    idx = np.arange(6)
    np.testing.assert_array_equal(d.index_of(d.classes_of(idx)), idx)
    np.testing.assert_array_equal(d.index_of(d.classes_of(idx), np.random.default_rng(0)), idx)


def test_regions_and_training_indices_cover_every_nuisance_value():
    d = Grid()
    mask = excluded_mask(d, [Region({"a": ["right"]})])
    np.testing.assert_array_equal(mask, d.classes_of(np.arange(24))[:, 0] == 1)
    kept = training_indices(d, [Region({"a": ["right"]})], 0, np.random.default_rng(0))
    np.testing.assert_array_equal(kept, np.arange(12))


def test_an_image_collection_has_no_factors_and_every_image_trains():
    c = Collection()
    assert c.factors == () and not c.has_factors and c.uint8_max == 255
    np.testing.assert_array_equal(training_indices(c, [], 0, np.random.default_rng(0)), np.arange(10))
    assert len(training_indices(c, [], 4, np.random.default_rng(0))) == 4
    with pytest.raises(ConfigError, match="no factors"):
        training_indices(c, [Region({"a": ["left"]})], 0, np.random.default_rng(0))


def test_registered_constructors_take_resolution_and_path(cache):
    d = DATASETS.get("dsprites")(resolution=16)
    assert d.image_shape == (1, 16, 16) and d.uint8_max == 1
    with pytest.raises(UserError, match="dsprites_file"):
        DATASETS.get("dsprites")(resolution=16, path="/data/dsprites.npz")
    for name in ("dsprites_file", "shapes3d", "mpi3d", "smallnorb", "cars3d", "images"):
        with pytest.raises(UserError) as err:
            DATASETS.get(name)(resolution=32, path=None)
        assert str(err.value).startswith(f"{name}: data.path is required") and "\n" not in str(err.value)
    assert not cache.exists() or not any(cache.glob("*.npy"))
