"""Image collections without factors: a folder of PNG/JPEG, a Parquet table of image bytes
(plain or Hugging Face's struct), an npz in any of its layouts; centre-cropped, area-resized,
three channels unless every image is grayscale."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from disentune.data.cached import CachedImages
from disentune.errors import UserError
from disentune.registry import DATASETS

from .published import leftovers, reference_resize


def centre(image: np.ndarray) -> np.ndarray:
    """The centred square of ``(H, W, C)``, written out independently of data/resize.py."""
    h, w = image.shape[:2]
    s = min(h, w)
    return image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]


def expected(images: list[np.ndarray], resolution: int) -> np.ndarray:
    return np.concatenate([reference_resize(centre(im)[None], resolution) for im in images])


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_folder_of_pngs_and_jpegs_is_read_recursively_in_sorted_order(cache, rng, tmp_path):
    folder = tmp_path / "faces"
    (folder / "b").mkdir(parents=True)
    rgb = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)  # portrait: crop rows
    gray = rng.integers(0, 256, (20, 50, 1), dtype=np.uint8)  # landscape: crop columns
    (folder / "b" / "2.png").write_bytes(png_bytes(rgb))
    (folder / "a.PNG").write_bytes(png_bytes(gray))
    (folder / "c.jpg").write_bytes(png_bytes(rgb, "JPEG"))
    (folder / "notes.txt").write_text("not an image")
    (folder / "._a.png").write_bytes(b"AppleDouble metadata, hidden: skipped")
    data = DATASETS.get("images")(resolution=16, path=str(folder))
    assert isinstance(data, CachedImages) and data.factors == () and not data.has_factors
    assert data.num_images == 3 and data.image_shape == (3, 16, 16)  # mixed: RGB
    jpeg = np.asarray(Image.open(folder / "c.jpg").convert("RGB"))
    want = expected([gray.repeat(3, axis=2), rgb, jpeg], 16)  # a.PNG, b/2.png, c.jpg
    np.testing.assert_array_equal(data.images_at(np.arange(3), np.uint8), want)
    assert abs(data.images_at(np.array([2]))[0].mean() - want[2].mean() / 255) < 1e-6


def test_an_all_grayscale_collection_has_one_channel(cache, rng, tmp_path):
    folder = tmp_path / "gray"
    folder.mkdir()
    images = [rng.integers(0, 256, (24, 24, 1), dtype=np.uint8) for _ in range(3)]
    for i, im in enumerate(images):
        (folder / f"{i}.png").write_bytes(png_bytes(im))
    data = DATASETS.get("images")(resolution=8, path=str(folder))
    assert data.image_shape == (1, 8, 8)
    np.testing.assert_array_equal(data.images_at(np.arange(3), np.uint8), expected(images, 8))


@pytest.mark.parametrize("struct", [False, True])
def test_a_parquet_table_of_image_bytes(cache, rng, tmp_path, struct):
    images = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(5)]
    encoded = [png_bytes(im) for im in images]
    column = (pa.array([{"bytes": b, "path": f"{i}.png"} for i, b in enumerate(encoded)]) if struct
              else pa.array(encoded, type=pa.binary()))
    path = tmp_path / "celeba.parquet"
    pq.write_table(pa.table({"image": column, "label": list(range(5))}), path)
    data = DATASETS.get("images")(resolution=16, path=str(path))
    assert data.image_shape == (3, 16, 16) and data.num_images == 5
    np.testing.assert_array_equal(data.images_at(np.arange(5), np.uint8), expected(images, 16))


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw", "float"])
def test_an_npz_of_images_in_each_layout(cache, rng, tmp_path, layout):
    base = rng.integers(0, 256, (6, 20, 28, 3), dtype=np.uint8)
    if layout == "nhw":
        stored, want = base[..., 0], base[..., :1]
    elif layout == "nchw":
        stored, want = base.transpose(0, 3, 1, 2), base
    elif layout == "float":
        stored, want = base / 255.0, base
    else:
        stored, want = base, base
    path = tmp_path / f"{layout}.npz"
    np.savez(path, images=stored)
    data = DATASETS.get("images")(resolution=8, path=str(path))
    assert data.image_shape == (want.shape[3], 8, 8)
    np.testing.assert_array_equal(data.images_at(np.arange(6), np.uint8), expected(list(want), 8))


def test_an_unreadable_image_is_one_line_naming_it(cache, rng, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "0.png").write_bytes(png_bytes(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)))
    bad = folder / "1.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(UserError) as err:
        DATASETS.get("images")(resolution=8, path=str(folder))
    assert str(err.value).startswith(f"{bad}: not a readable image") and "\n" not in str(err.value)
    truncated = folder / "1.jpg"
    truncated.write_bytes(png_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "JPEG")[:300])
    with pytest.raises(UserError, match=f"^{truncated}: not a readable image"):
        DATASETS.get("images")(resolution=8, path=str(folder))
    assert leftovers(cache) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="holds no .png, .jpg, .jpeg images"):
        DATASETS.get("images")(resolution=8, path=str(empty))
    odd = tmp_path / "table.csv"
    odd.write_text("a,b\n")
    with pytest.raises(UserError, match="a folder of PNG/JPEG files, a .parquet or an .npz"):
        DATASETS.get("images")(resolution=8, path=str(odd))
    no_column = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), no_column)
    with pytest.raises(UserError, match="needs an image-bytes column 'image'"):
        DATASETS.get("images")(resolution=8, path=str(no_column))


def test_path_names_are_kept_relative_to_the_collection(cache, tmp_path):
    """Moving a collection does not change its content hash, so its entry is found again."""
    images = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200)]
    for where in ("one", "two"):
        (tmp_path / where).mkdir()
        for i, im in enumerate(images):
            (tmp_path / where / f"{i}.png").write_bytes(png_bytes(im))
    first = DATASETS.get("images")(resolution=4, path=str(tmp_path / "one"))
    second = DATASETS.get("images")(resolution=4, path=str(Path(tmp_path / "two")))
    assert first.entry.sha256 == second.entry.sha256 and first.entry.path == second.entry.path
    log = (cache / "conversions.log").read_text().splitlines()
    assert len(log) == 1
