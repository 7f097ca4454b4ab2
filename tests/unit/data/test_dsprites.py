import math

import numpy as np
import pytest

from disentune.data.dsprites import DSprites, shape_mask
from disentune.data.ground_truth import Region, excluded_mask, training_indices
from disentune.errors import ConfigError


def test_factor_grid_matches_the_published_one():
    d = DSprites(resolution=64)
    assert d.num_images == 737_280
    np.testing.assert_array_equal(d.factor_sizes, [3, 6, 40, 32, 32])
    np.testing.assert_array_equal(d.strides, [245_760, 40_960, 1024, 32, 1])
    assert d.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    np.testing.assert_allclose(d.factors[1].values, np.linspace(0.5, 1.0, 6))
    assert d.factors[2].values[0] == 0.0 and d.factors[2].values[-1] == 2 * math.pi
    np.testing.assert_allclose(d.factors[3].values, np.linspace(0, 1, 32))


def test_factor_index_round_trip():
    d = DSprites(resolution=32)
    rng = np.random.default_rng(0)
    classes = d.sample_factors(1000, rng)
    np.testing.assert_array_equal(d.classes_of(d.index_of(classes)), classes)
    idx = rng.integers(0, d.num_images, 1000)
    np.testing.assert_array_equal(d.index_of(d.classes_of(idx)), idx)
    assert d.index_of(np.array([[2, 5, 39, 31, 31]]))[0] == d.num_images - 1
    with pytest.raises(ValueError):
        d.index_of(np.array([[3, 0, 0, 0, 0]]))


def test_rendered_cache_is_complete_binary_and_deterministic(dsprites32):
    packed = dsprites32.packed
    assert packed.shape == (737_280, 32 * 32 // 8)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, dsprites32.num_images, 200)
    images = dsprites32.images_at(idx)
    assert images.shape == (200, 1, 32, 32) and images.dtype == np.float32
    assert set(np.unique(images)) <= {0.0, 1.0}
    assert (images.sum(axis=(1, 2, 3)) > 0).all()  # every sprite is visible
    # the cache equals a fresh render of the same blocks
    classes = dsprites32.classes_of(idx)
    for i in range(5):
        s, sc, o, x, y = classes[i]
        block = dsprites32.render_block(s, sc, o)
        np.testing.assert_array_equal(block[32 * x + y], images[i, 0].astype(bool))


def test_positions_move_the_sprite_and_scale_grows_it(dsprites32):
    d = dsprites32

    def centroid_and_area(classes):
        img = d.images(np.array([classes]))[0, 0]
        rows, cols = np.nonzero(img)
        return cols.mean(), rows.mean(), img.sum()

    x0, y0, a_small = centroid_and_area([0, 0, 0, 0, 0])
    x1, y1, _ = centroid_and_area([0, 0, 0, 31, 0])
    x2, y2, _ = centroid_and_area([0, 0, 0, 0, 31])
    _, _, a_big = centroid_and_area([0, 5, 0, 0, 0])
    assert x1 > x0 + 15 and abs(y1 - y0) < 1  # pos_x moves columns
    assert y2 > y0 + 15 and abs(x2 - x0) < 1  # pos_y moves rows
    assert a_big > 3 * a_small  # scale 1 vs 0.5: four times the area


def test_shape_masks():
    g = np.arange(-300, 301) / 1000.0  # exactly symmetric about 0
    x, y = np.meshgrid(g, g)
    step = (g[1] - g[0]) ** 2
    square = shape_mask(0, x, y, 1.0)
    assert np.isclose(square.sum() * step, 0.28**2, rtol=0.02)
    ellipse = shape_mask(1, x, y, 1.0)
    assert np.isclose(ellipse.sum() * step, math.pi * 0.2 * 0.1, rtol=0.02)
    assert (ellipse == ellipse[:, ::-1]).all() and (ellipse == ellipse[::-1, :]).all()
    heart = shape_mask(2, x, y, 1.0)
    assert (heart == heart[:, ::-1]).all()  # mirror-symmetric left-right
    assert not (heart == heart[::-1, :]).all()  # but not top-bottom: lobes up, tip down
    lobes, tip = heart[:300].sum(), heart[301:].sum()  # rows above / below the centre
    assert lobes != tip
    for shape in range(3):  # every shape fits the render window at scale 1
        assert not shape_mask(shape, x, y, 1.0)[np.hypot(x, y) > 0.215].any()


def test_exclusion_regions():
    d = DSprites(resolution=32)
    region = Region({"shape": ("heart",), "pos_x": (0.5, 1.0)})
    region.validate(d, "data.exclude[0]")
    mask = excluded_mask(d, [region])
    assert mask.sum() == d.num_images // 3 // 2
    classes = d.classes_of(np.flatnonzero(mask))
    assert (classes[:, 0] == 2).all() and (classes[:, 3] >= 16).all()
    kept = training_indices(d, [region], 1000, np.random.default_rng(0))
    assert len(kept) == 1000 and not mask[kept].any()
    with pytest.raises(ConfigError, match="leaves no training images"):
        training_indices(d, [Region({"scale": (0.0, 2.0)})], 0, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown factor"):
        Region({"colour": ("red",)}).validate(d, "data.exclude[0]")
    with pytest.raises(ConfigError, match="interval"):
        Region({"pos_x": (1.0, 0.0)}).validate(d, "data.exclude[0]")
