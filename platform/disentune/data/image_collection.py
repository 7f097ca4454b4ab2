"""Image collections without factors (CelebA and the like), for FID and the unsupervised scores.

``data: {dataset: images, path: ...}`` where ``path`` (local or ``s3://``) is one of

- a folder of PNG / JPEG files (``.png .jpg .jpeg``, any case), found recursively, in sorted order
  of their relative paths;
- a Parquet table with an image-bytes column: ``image`` as bytes, or a struct with a ``bytes``
  field as Hugging Face ``datasets`` writes it (the column ``image``, else the only such column);
- an ``.npz`` with an ``images`` array ``(n, H, W)``, ``(n, H, W, C)`` or ``(n, C, H, W)``
  (``C`` in 1, 3, 4), uint8 or float in [0, 1] (scaled by 255, rounded half up).

Every image is centre-cropped to the largest square and area-resized (data/resize.py) to the
run's resolution, as CelebA is prepared at 64 x 64. Channels: 3 (RGB) unless every image is
grayscale, then 1: for files, grayscale means a single-channel PIL mode (``1``, ``L``, ``LA``,
``I``, ``I;16``, ``F``); for an npz, ``(n, H, W)`` or one channel. Colour images keep RGB
(alpha and palettes are converted by PIL's ``convert("RGB")``, alpha dropped); in a mixed
collection the grayscale images are repeated over three channels. Files are decoded one at a time,
so memory does not grow with the collection. An unreadable image is one line naming it.
Registered as ``images``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from disentune.data.convert import Conversion, rows_per_chunk
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.importer import Reader, load
from disentune.data.npz import NpzFile, reading
from disentune.data.resize import area_resize, centre_square, unit_float_to_uint8
from disentune.data.sources import SourceFile
from disentune.errors import UserError
from disentune.registry import DATASETS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_BATCH = 256  # decoded images per chunk


def _decode(data: bytes | Path, label: str, mode: str):
    """The image ``(H, W, C)`` uint8 of one encoded file, in PIL mode ``L`` or ``RGB``."""
    from PIL import Image

    try:
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as im:
            if mode == "L" and im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                array = np.asarray(im, dtype=np.float64)  # 16-bit or float gray: scale to 8 bits
                top = 65535.0 if im.mode.startswith("I;16") or array.max() > 255 else 255.0
                return unit_float_to_uint8(np.clip(array / top, 0, 1))[..., None]
            return np.asarray(im.convert(mode)).reshape(im.size[1], im.size[0], -1)
    except (OSError, ValueError, SyntaxError) as err:
        raise UserError(f"{label}: not a readable image ({str(err).splitlines()[0][:120]})") from None


def _mode(data: bytes | Path, label: str) -> str:
    from PIL import Image

    try:
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as im:
            return im.mode
    except (OSError, ValueError, SyntaxError) as err:
        raise UserError(f"{label}: not a readable image ({str(err).splitlines()[0][:120]})") from None


def _batched(encoded: Callable[[], Iterator[tuple[bytes | Path, str]]], n: int, resolution: int,
             mode: str, label: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode, crop and resize ``(data, label)`` pairs into chunks of ``_BATCH`` images."""
    batch: list[np.ndarray] = []
    start = 0
    for data, label in encoded():
        batch.append(area_resize(centre_square(_decode(data, label, mode))[None], resolution)[0])
        if len(batch) == _BATCH:
            yield np.stack(batch), np.arange(start, start + len(batch))
            start += len(batch)
            batch = []
    if batch:
        yield np.stack(batch), np.arange(start, start + len(batch))
    if start + len(batch) != n:
        raise UserError(f"{label}: changed while it was read ({start + len(batch)} of {n} images)")


def _from_files(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    gray = all(_mode(p, f.uri) in GRAY_MODES for p, f in zip(paths, files))
    mode = "L" if gray else "RGB"
    return Conversion(num_images=len(paths), channels=1 if gray else 3,
                      chunks=lambda: _batched(lambda: zip(paths, [f.uri for f in files]),
                                              len(paths), resolution, mode, files[0].uri))


def _image_column(schema, label: str) -> tuple[str, bool]:
    """The image-bytes column and whether it is a struct with ``bytes``."""
    import pyarrow as pa

    def kind(field) -> bool | None:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            return False
        if pa.types.is_struct(field.type) and field.type.get_field_index("bytes") >= 0:
            return True
        return None

    fields = [f for f in schema if kind(f) is not None]
    named = [f for f in fields if f.name == "image"]
    if named or len(fields) == 1:
        field = (named or fields)[0]
        return field.name, bool(kind(field))
    raise UserError(f"{label}: needs an image-bytes column 'image' (bytes, or a struct with "
                    f"'bytes'); it has {', '.join(schema.names)}")


def _from_parquet(path: Path, label: str, resolution: int) -> Conversion:
    import pyarrow.parquet as pq

    with reading(label, "not a readable Parquet file; truncated or corrupt"):
        n = pq.ParquetFile(path).metadata.num_rows
        column, struct = _image_column(pq.ParquetFile(path).schema_arrow, label)

    def encoded() -> Iterator[tuple[bytes, str]]:
        row = 0
        with reading(label):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH, columns=[column]):
                values = batch.column(0)
                if struct:
                    values = values.field("bytes")
                for value in values.to_pylist():
                    if value is None:
                        raise UserError(f"{label}: row {row} has no image bytes")
                    yield value, f"{label} row {row}"
                    row += 1

    gray = all(_mode(data, where) in GRAY_MODES for data, where in encoded())
    mode = "L" if gray else "RGB"
    return Conversion(num_images=n, channels=1 if gray else 3,
                      chunks=lambda: _batched(encoded, n, resolution, mode, label))


def _channels_last(rows: np.ndarray, layout: str) -> np.ndarray:
    """``(n, H, W, C)`` of rows stored as ``layout`` (nhw, nhwc or nchw)."""
    if layout == "nhw":
        return rows[..., None]
    return rows.transpose(0, 2, 3, 1) if layout == "nchw" else rows


def _from_npz(path: Path, label: str, resolution: int) -> Conversion:
    npz = NpzFile(path, label)
    member = npz.member("images")
    shape = member.shape
    if not (np.issubdtype(member.dtype, np.floating) or member.dtype == np.uint8):
        raise UserError(f"{label}: images must be uint8 or float in [0, 1], got {member.dtype}")
    if len(shape) == 3:
        layout = "nhw"
    elif len(shape) == 4 and shape[3] in (1, 3, 4):
        layout = "nhwc"
    elif len(shape) == 4 and shape[1] in (1, 3, 4):
        layout = "nchw"
    else:
        raise UserError(f"{label}: images must be (n, H, W), (n, H, W, C) or (n, C, H, W) with C in "
                        f"1, 3, 4; got shape {shape}")
    channels = 1 if layout == "nhw" or shape[3 if layout == "nhwc" else 1] == 1 else 3

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        start = 0
        with npz:
            pixels = int(np.prod(shape[1:]))
            for rows in npz.iter_rows("images", rows_per_chunk(pixels * member.dtype.itemsize)):
                if rows.dtype != np.uint8:
                    if not np.isfinite(rows).all() or rows.min() < 0 or rows.max() > 1:
                        raise UserError(f"{label}: float images must lie in [0, 1]; images {start}.."
                                        f"{start + len(rows) - 1} hold a value outside it")
                    rows = unit_float_to_uint8(rows)
                x = centre_square(_channels_last(rows, layout))[..., :channels]
                yield area_resize(np.ascontiguousarray(x), resolution), np.arange(start, start + len(x))
                start += len(x)

    return Conversion(num_images=shape[0], channels=channels, chunks=chunks)


def open_images(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    if len(files) == 1 and files[0].name.lower().endswith(".parquet"):
        return _from_parquet(paths[0], files[0].uri, resolution)
    if len(files) == 1 and files[0].name.lower().endswith(".npz"):
        return _from_npz(paths[0], files[0].uri, resolution)
    return _from_files(paths, files, resolution)


def select_images(files: list[SourceFile], uri: str) -> list[SourceFile]:
    if not files:
        raise UserError(f"{uri}: holds no {', '.join(IMAGE_SUFFIXES)} images")
    if len(files) == 1 and not files[0].name.lower().endswith((".parquet", ".npz", *IMAGE_SUFFIXES)):
        raise UserError(f"{uri}: an image collection is a folder of PNG/JPEG files, a .parquet or an .npz")
    return files


READER = Reader(name="images", folder=None, accept=lambda name: name.lower().endswith(IMAGE_SUFFIXES),
                path_help="a folder of PNG/JPEG images, a .parquet with image bytes or an .npz with images",
                open=open_images, select=select_images)


@DATASETS.register("images")
def make_images(*, resolution: int, path: str | None = None) -> CachedGroundTruth | CachedImages:
    """The image collection at ``path``, converted to ``resolution`` (no factors)."""
    return load(READER, path, resolution)
