"""The one resize every cache is made with: area averaging, exact in integers, rounded half up."""

from __future__ import annotations

import numpy as np
import pytest

from disentune.data.resize import area_resize, centre_square, unit_float_to_uint8, windows

from .published import reference_resize


@pytest.mark.parametrize("side, resolution", [(64, 32), (64, 16), (96, 64), (128, 64), (178, 64),
                                              (64, 64), (16, 40), (20, 3)])
def test_area_resize_is_torch_area_interpolation_rounded_half_up(side, resolution):
    images = np.random.default_rng(side + resolution).integers(0, 256, (4, side, side, 3), dtype=np.uint8)
    out = area_resize(images, resolution)
    assert out.shape == (4, resolution, resolution, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out.transpose(0, 3, 1, 2), reference_resize(images, resolution))


def test_an_integer_factor_gives_exact_block_means():
    images = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 1), dtype=np.uint8)
    blocks = images.reshape(3, 16, 4, 16, 4, 1).astype(np.float64).mean(axis=(2, 4))
    np.testing.assert_array_equal(area_resize(images, 16), np.floor(blocks + 0.5))
    binary = np.zeros((1, 2, 2, 1), np.uint8)
    binary[0, 0, :, 0] = 255  # half the block on: 127.5 rounds up
    assert area_resize(binary, 1)[0, 0, 0, 0] == 128


def test_upscaling_replicates_pixels_and_blends_at_boundaries():
    image = np.array([[[[0], [200]]]], np.uint8).reshape(1, 1, 2, 1).repeat(2, axis=1)  # 2x2
    np.testing.assert_array_equal(area_resize(image, 4)[0, 0, :, 0], [0, 0, 200, 200])
    np.testing.assert_array_equal(area_resize(image, 3)[0, 0, :, 0], [0, 100, 200])
    start, end = windows(2, 3)
    np.testing.assert_array_equal(start, [0, 0, 1])
    np.testing.assert_array_equal(end, [1, 2, 2])


def test_centre_square_and_float_levels():
    image = np.arange(5 * 8).reshape(5, 8, 1)
    np.testing.assert_array_equal(centre_square(image), image[:, 1:6])
    np.testing.assert_array_equal(centre_square(image[None].repeat(2, 0)), image[None, :, 1:6].repeat(2, 0))
    np.testing.assert_array_equal(unit_float_to_uint8(np.array([0.0, 0.5 / 255, 1.0, 0.2])), [0, 1, 255, 51])
