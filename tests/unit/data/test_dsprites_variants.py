import pickle

import numpy as np
import pytest

from disentune.data.dsprites import DSprites
from disentune.data.dsprites_variants import ColorDSprites, NoisyDSprites
from disentune.data.procedural import from_uint8, index_bytes, refuse_path
from disentune.errors import UserError
from disentune.registry import DATASETS


@pytest.fixture(scope="module")
def sample(dsprites32):
    """300 random indices and their binary sprites ``(n, R, R)`` bool."""
    idx = np.random.default_rng(0).integers(0, dsprites32.num_images, 300)
    return idx, dsprites32.images_at(idx, dtype=np.uint8)[:, 0].astype(bool)


def test_index_bytes_are_a_pinned_pure_function_of_seed_and_index():
    got = index_bytes(0, np.array([0, 1, 737_279]), 8)
    # pinned: changing the generator would silently change every colour and noise image
    np.testing.assert_array_equal(got, [[175, 205, 29, 123, 57, 168, 32, 226],
                                        [192, 144, 141, 87, 151, 223, 245, 29],
                                        [200, 86, 73, 224, 192, 149, 209, 25]])
    np.testing.assert_array_equal(index_bytes(0, np.array([737_279, 0]), 8), got[[2, 0]])
    np.testing.assert_array_equal(index_bytes(0, np.array([1]), 21)[:, :8], got[1:2])  # a prefix
    assert not np.array_equal(index_bytes(1, np.array([0, 1, 737_279]), 8), got)  # seeds differ


def _reference_bytes(seed: int, index: int, nbytes: int) -> bytes:
    """The documented stream in plain Python integers (splitmix64, arithmetic mod 2**64)."""
    m = 2**64 - 1

    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    start = mix((mix(seed) + index * 0xD1B54A32D192ED03) & m)
    words = [mix((start + (j + 1) * 0x9E3779B97F4A7C15) & m) for j in range(-(-nbytes // 8))]
    return b"".join(w.to_bytes(8, "little") for w in words)[:nbytes]


def test_index_bytes_match_the_documented_stream():
    for seed, index in [(0, 0), (3, 1), (0x0A015E, 737_279), (2**40 + 7, 123_456)]:
        got = index_bytes(seed, np.array([index]), 19)[0].tobytes()
        assert got == _reference_bytes(seed, index, 19)


def test_index_bytes_look_uniform_and_independent():
    b = index_bytes(7, np.arange(2000), 1024).astype(np.float64)  # 2,048,000 bytes
    counts = np.bincount(b.astype(np.int64).ravel(), minlength=256)
    expected = b.size / 256
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 400  # 255 degrees of freedom: mean 255, sd 22.6
    assert abs(b.mean() - 127.5) < 0.3
    neighbours = np.corrcoef(b[:-1].ravel(), b[1:].ravel())[0, 1]  # image i against image i + 1
    along = np.corrcoef(b[:, :-1].ravel(), b[:, 1:].ravel())[0, 1]  # byte j against byte j + 1
    assert abs(neighbours) < 0.005 and abs(along) < 0.005


@pytest.mark.parametrize("cls", [ColorDSprites, NoisyDSprites])
def test_same_grid_as_dsprites_with_three_channels(cls):
    plain, data = DSprites(resolution=32), cls(resolution=32)
    assert data.factor_names == plain.factor_names and data.num_images == 737_280
    np.testing.assert_array_equal(data.strides, plain.strides)
    for a, b in zip(data.factors, plain.factors):
        np.testing.assert_array_equal(a.values, b.values)
    assert data.image_shape == (3, 32, 32) and data.uint8_max == 255 and plain.uint8_max == 1
    assert data.path == plain.path  # composed from the shared dSprites cache, no cache of its own


@pytest.mark.parametrize("cls", [ColorDSprites, NoisyDSprites])
def test_images_are_deterministic_in_any_batch_order(cls, sample, dsprites32):
    idx, _ = sample
    data = cls(resolution=32)
    x = data.images_at(idx, dtype=np.uint8)
    assert x.shape == (300, 3, 32, 32) and x.dtype == np.uint8
    perm = np.random.default_rng(2).permutation(len(idx))
    np.testing.assert_array_equal(data.images_at(idx[perm], dtype=np.uint8), x[perm])
    np.testing.assert_array_equal(np.concatenate([data.images_at(idx[i:i + 13], np.uint8)
                                                  for i in range(0, len(idx), 13)]), x)
    np.testing.assert_array_equal(cls(resolution=32).images_at(idx, np.uint8), x)
    shipped = pickle.dumps(data)  # to a Ray worker: the cache's path, not its memory map
    assert len(shipped) < 10_000
    np.testing.assert_array_equal(pickle.loads(shipped).images_at(idx, np.uint8), x)
    f = data.images_at(idx)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, np.divide(x, 255.0, dtype=np.float32))
    np.testing.assert_array_equal(data.images(data.classes_of(idx)), f)


def test_color_dsprites_sprite_colour_in_half_to_one_on_black(sample):
    idx, sprite = sample
    x = ColorDSprites(resolution=32).images_at(idx)  # (n, 3, R, R) float
    assert (x.transpose(1, 0, 2, 3)[:, ~sprite] == 0).all()  # background exactly black
    on = x.transpose(0, 2, 3, 1)[sprite]  # (pixels, 3)
    assert (on >= 0.5).all() and (on <= 1.0).all()
    colour = x.max(axis=(2, 3))  # (n, 3): one colour per image, on every sprite pixel
    for i in range(len(idx)):
        on_i = x[i][:, sprite[i]]  # (3, sprite pixels)
        np.testing.assert_array_equal(on_i, np.repeat(colour[i][:, None], on_i.shape[1], axis=1))
    # U(0.5, 1) per channel per image (on 8-bit levels): mean 0.75, sd 0.144, channels independent
    assert abs(colour.mean() - 0.75) < 0.02 and abs(colour.std() - 0.144) < 0.02
    assert abs(np.corrcoef(colour.T)[0, 1]) < 0.2
    assert colour.min() < 0.52 and colour.max() > 0.98


def test_noisy_dsprites_white_sprite_on_uniform_noise(sample):
    idx, sprite = sample
    x = NoisyDSprites(resolution=32).images_at(idx)
    assert (x.transpose(1, 0, 2, 3)[:, sprite] == 1.0).all()  # min(1 + noise, 1)
    noise = x.transpose(1, 0, 2, 3)[:, ~sprite]  # (3, background pixels)
    assert 0.0 <= noise.min() < 0.005 and 0.995 < noise.max() <= 1.0
    assert abs(noise.mean() - 0.5) < 0.01 and abs(noise.std() - 0.289) < 0.01  # U(0, 1)
    assert abs(np.corrcoef(noise)[0, 1]) < 0.02  # per channel, not grey noise
    assert len(np.unique(noise)) == 256  # all 8-bit levels occur
    # each image has its own noise: two images never share their background
    a, b = x[0][:, ~sprite[0] & ~sprite[1]], x[1][:, ~sprite[0] & ~sprite[1]]
    assert (a != b).mean() > 0.99


def test_from_uint8_and_refuse_path():
    levels = np.arange(256, dtype=np.uint8)
    assert from_uint8(levels, np.uint8) is levels
    expected = levels.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(from_uint8(levels, np.float32), expected)
    assert from_uint8(levels, np.float64)[-1] == 1.0
    refuse_path("x", None)
    with pytest.raises(UserError, match="data.path: dataset x is rendered"):
        refuse_path("x", "/some/file")


@pytest.mark.parametrize(
    "name, cls", [("color_dsprites", ColorDSprites), ("noisy_dsprites", NoisyDSprites)]
)
def test_registered_and_refuses_a_path(name, cls):
    data = DATASETS.get(name)(resolution=32)
    assert type(data) is cls and data.resolution == 32
    with pytest.raises(UserError, match=f"{name}.*reads no file") as err:
        DATASETS.get(name)(resolution=32, path="s3://bucket/dsprites.npz")
    assert "\n" not in str(err.value)
