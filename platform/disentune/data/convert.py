"""The one chunked conversion path every reader shares: source chunks -> area resize -> cache.

A reader describes its file as a :class:`Conversion`: how many images, how many channels, the
factor grid, and a generator of chunks ``(pixels, rows)`` where ``pixels`` is uint8
``(n, H, W, C)`` (channels last, as the files store them) and ``rows`` ``(n,)`` the cache rows
they go to (the grid order; a reordered file scatters them). :func:`convert` resizes each chunk
(data/resize.py), moves the channels first and writes it with ``pwrite`` into ``<target>.part``,
a ``.npy`` of uint8 ``(n, C, R, R)``; when every row has been written exactly once it renames the
file into place and writes the sidecar. Pixels are written with ``pwrite``, not through a memory
map, so the converter's resident memory is one chunk (tens of MiB) whatever the file's size; the
page cache holds the rest and the kernel writes it back.

Any failure (a truncated file discovered halfway, a bad value) removes the ``.part`` file:
nothing half-written is ever left in the cache.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from disentune.data.cache import CacheEntry, imported_dir, sidecar_of, write_json_atomic
from disentune.data.ground_truth import Factor
from disentune.data.resize import area_resize
from disentune.errors import UserError
from disentune.storage import free_bytes, no_space

CHUNK_BYTES = 32 * 2**20  # source pixels per chunk
Chunk = tuple[np.ndarray, np.ndarray]  # (pixels (n, H, W, C) uint8, cache rows (n,) int64)


@dataclass(frozen=True)
class Conversion:
    """What a reader hands the converter (see the module docstring)."""

    num_images: int
    channels: int
    chunks: Callable[[], Iterator[Chunk]]
    factors: tuple[Factor, ...] = ()
    nuisance: tuple[str, int] | None = None


def rows_per_chunk(image_bytes: int) -> int:
    """How many images of ``image_bytes`` each make one chunk of about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(1, image_bytes))


def _runs(rows: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(first row, position in the sorted chunk, length)`` of each run of consecutive rows."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(rows)]])
    for s, e in zip(starts.tolist(), ends.tolist()):
        yield int(rows[s]), s, e - s


def _write(fd: int, offset: int, image_bytes: int, rows: np.ndarray, images: np.ndarray) -> None:
    order = np.argsort(rows, kind="stable")
    rows, images = rows[order], np.ascontiguousarray(images[order])
    flat = images.reshape(len(rows), image_bytes)
    for first, at, length in _runs(rows):
        data = memoryview(flat[at : at + length]).cast("B")
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + first * image_bytes + done)


def _log(entry: CacheEntry) -> None:
    line = json.dumps({"pid": os.getpid(), "dataset": entry.dataset, "sha256": entry.sha256,
                       "resolution": entry.resolution, "images": entry.images,
                       "seconds": round(entry.seconds, 3), "created": entry.created})
    with open(imported_dir() / "conversions.log", "a") as f:
        f.write(line + "\n")


def convert(conversion: Conversion, target: Path, *, dataset: str, source: str, sha256: str,
            resolution: int) -> CacheEntry:
    """Write ``conversion`` at ``resolution`` into the cache entry ``target`` (a ``.npy``)."""
    n, c, r = conversion.num_images, conversion.channels, resolution
    target.parent.mkdir(parents=True, exist_ok=True)
    need, free = n * c * r * r, free_bytes(target.parent)
    if free is not None and need > free:  # refused up front, in the one line every full disk gives
        raise no_space(target, need)
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    began = time.perf_counter()
    written = np.zeros(n, dtype=bool)
    bar = tqdm(total=n, unit="img", unit_scale=True, desc=f"converting {dataset} to {r}x{r}",
               file=sys.stderr, disable=not sys.stderr.isatty(), mininterval=1.0)
    try:
        np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=(n, c, r, r)).flush()
        offset = np.load(part, mmap_mode="r").offset
        fd = os.open(part, os.O_WRONLY)
        try:
            for pixels, rows in conversion.chunks():
                rows = np.asarray(rows, dtype=np.int64)
                if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[3] != c:
                    raise RuntimeError(f"reader chunk {pixels.dtype} {pixels.shape}, expected uint8 "
                                       f"(n, H, W, {c})")
                if written[rows].any():
                    raise RuntimeError("a reader wrote a cache row twice")
                small = area_resize(pixels, r).transpose(0, 3, 1, 2)  # (n, C, R, R)
                _write(fd, offset, c * r * r, rows, small)
                written[rows] = True
                bar.update(len(rows))
        finally:
            os.close(fd)
        if not written.all():
            raise RuntimeError(f"the reader left {int((~written).sum())} of {n} cache rows unwritten")
        os.replace(part, target)
    except OSError as err:  # the readers turn their read errors into UserErrors: this is a write
        raise UserError(f"{target.parent}: cannot write the cache entry ({err.strerror or err})") from None
    finally:
        bar.close()
        part.unlink(missing_ok=True)
    seconds = time.perf_counter() - began
    entry = CacheEntry(
        dataset=dataset, source=source, sha256=sha256, resolution=r, channels=c, images=n,
        factors=conversion.factors, nuisance_name=conversion.nuisance[0] if conversion.nuisance else None,
        nuisance_size=conversion.nuisance[1] if conversion.nuisance else 1, seconds=seconds,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), path=target)
    write_json_atomic(sidecar_of(target), entry.to_json())
    _log(entry)
    rate = n / max(seconds, 1e-9)
    print(f"disentune: converted {dataset} from {source}: {n:,} images to {c}x{r}x{r} in "
          f"{seconds:.1f} s ({rate:,.0f} images/s), {math.ceil(target.stat().st_size / 2**20):,} MiB "
          f"at {target}", file=sys.stderr)
    return entry


def check_uint8(array_dtype: np.dtype, label: str, name: str) -> None:
    """Refuse a pixel array that is not uint8, naming the file and the array."""
    if np.dtype(array_dtype) != np.uint8:
        raise UserError(f"{label}: {name} must be uint8, got {np.dtype(array_dtype)}")
