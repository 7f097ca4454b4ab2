"""The published SmallNORB files (LeCun, Huang & Bottou 2004), in their binary matrix format.

``data.path`` is the folder holding the six files (as published, uncompressed)::

    smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat   (24300, 2, 96, 96) uint8  stereo pairs
    smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat   (24300,) int32            category 0-4
    smallnorb-5x46789x9x18x6x2x96x96-training-info.mat  (24300, 4) int32          instance,
                                       elevation 0-8, azimuth 0-34 step 2, lighting 0-5
    smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat   the same for the other split

Each file: int32 little-endian magic (``0x1E3D4C55`` uint8 data, ``0x1E3D4C54`` int32 data),
int32 ``ndim``, ``max(3, ndim)`` int32 dimensions (padded with 1), then the data in C order.

As disentanglement_lib does, both splits are joined and camera 0 is kept; the factors are
category 5 (animal, human, airplane, truck, car), elevation 9, azimuth 18, lighting 6, with
values the labels' sorted unique values; the object instance (5 per category per split, 10 over
both) is a nuisance variable stored fastest (data/ground_truth.py), drawn at random by
``index_of(classes, rng)``. One channel. Registered as ``smallnorb``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from disentune.data.convert import Conversion, rows_per_chunk
from disentune.data.grid import grid_from_labels
from disentune.data.cached import CachedGroundTruth, CachedImages
from disentune.data.importer import Reader, load
from disentune.data.npz import reading
from disentune.data.sources import SourceFile
from disentune.errors import UserError
from disentune.registry import DATASETS

MAGIC = {0x1E3D4C55: np.dtype("<u1"), 0x1E3D4C54: np.dtype("<i4")}
SPLITS, KINDS = ("training", "testing"), ("dat", "cat", "info")
_NAME = re.compile(r"^smallnorb-[^/]*-(training|testing)-(dat|cat|info)\.mat$")
CATEGORIES = ("animal", "human", "airplane", "truck", "car")
NAMES = ("category", "elevation", "azimuth", "lighting", "instance")


def _header(path: Path, label: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """dtype, dims and data offset of one matrix file; its size is checked against them."""
    with reading(label), open(path, "rb") as f:
        head = np.frombuffer(f.read(8), dtype="<i4")
        if len(head) < 2 or int(head[0]) & 0xFFFFFFFF not in MAGIC:
            raise UserError(f"{label}: not a SmallNORB matrix file (magic "
                            f"{int(head[0]) & 0xFFFFFFFF if len(head) else 0:#x})")
        ndim = int(head[1])
        if not 1 <= ndim <= 8:
            raise UserError(f"{label}: bad number of dimensions {ndim}")
        dims = np.frombuffer(f.read(4 * max(3, ndim)), dtype="<i4")
    if len(dims) < max(3, ndim) or (dims[:ndim] < 0).any():
        raise UserError(f"{label}: truncated header")
    dtype, shape = MAGIC[int(head[0]) & 0xFFFFFFFF], tuple(int(d) for d in dims[:ndim])
    offset = 8 + 4 * max(3, ndim)
    need, have = offset + int(np.prod(shape)) * dtype.itemsize, path.stat().st_size
    if have != need:
        raise UserError(f"{label}: {'truncated' if have < need else 'too long'}: {have:,} bytes, "
                        f"its header {shape} {dtype.name} needs {need:,}")
    return dtype, shape, offset


def _matrix(path: Path, label: str, dtype: str, shape: tuple[int | None, ...],
            want: str) -> tuple[tuple[int, ...], int]:
    """Shape and data offset of a matrix file that must be ``dtype`` of ``shape`` (None: any)."""
    got_dtype, got, offset = _header(path, label)
    if got_dtype != np.dtype(dtype) or len(got) != len(shape) or any(
            s is not None and s != g for s, g in zip(shape, got)):
        raise UserError(f"{label}: expected a {np.dtype(dtype).name} {want} matrix, "
                        f"got {got_dtype.name} {got}")
    return got, offset


def select_smallnorb(files: list[SourceFile], uri: str) -> list[SourceFile]:
    """The six files in split-major order (training dat, cat, info, testing dat, cat, info)."""
    found: dict[tuple[str, str], list[SourceFile]] = {}
    for f in files:
        m = _NAME.match(f.name)
        if m:
            found.setdefault((m.group(1), m.group(2)), []).append(f)
    missing = [f"*-{s}-{k}.mat" for s in SPLITS for k in KINDS if (s, k) not in found]
    if missing:
        raise UserError(f"{uri}: missing the SmallNORB file(s) smallnorb-{', smallnorb-'.join(missing)} "
                        "(the six files as published, uncompressed)")
    twice = [v[0].name for v in found.values() if len(v) > 1]
    if twice:
        raise UserError(f"{uri}: more than one file like {twice[0]}")
    return [found[(s, k)][0] for s in SPLITS for k in KINDS]


def open_smallnorb(paths: list[Path], files: list[SourceFile], resolution: int) -> Conversion:
    splits, labels = [], []
    for i in range(len(SPLITS)):
        (dat, cat, info), names = paths[3 * i : 3 * i + 3], [f.uri for f in files[3 * i : 3 * i + 3]]
        shape, dat_offset = _matrix(dat, names[0], "u1", (None, 2, None, None), "(n, 2, H, W)")
        n, side = shape[0], shape[2]
        if shape[3] != side:
            raise UserError(f"{names[0]}: images must be square, got {shape[2]} x {shape[3]}")
        _, cat_offset = _matrix(cat, names[1], "<i4", (n,), f"({n},)")
        _, info_offset = _matrix(info, names[2], "<i4", (n, 4), f"({n}, 4)")
        categories = np.fromfile(cat, dtype="<i4", count=n, offset=cat_offset)
        info_rows = np.fromfile(info, dtype="<i4", count=4 * n, offset=info_offset).reshape(n, 4)
        # category, elevation, azimuth, lighting, then instance (the nuisance, last)
        labels.append(np.column_stack([categories, info_rows[:, 1:], info_rows[:, 0]]))
        splits.append((dat, names[0], n, side, dat_offset))
    if splits[0][3] != splits[1][3]:
        raise UserError(f"{files[3].uri}: {splits[1][3]} px images, the training split has {splits[0][3]}")
    grid = grid_from_labels(np.concatenate(labels), NAMES, f"{Path(files[0].uri).parent} (SmallNORB)",
                            nuisance=True, value_labels={"category": CATEGORIES})
    total = sum(s[2] for s in splits)

    def chunks():
        first = 0
        for dat, label, n, side, offset in splits:
            pair = 2 * side * side
            step = rows_per_chunk(pair)
            with reading(label), open(dat, "rb") as f:
                for start in range(0, n, step):
                    stop = min(n, start + step)
                    f.seek(offset + start * pair)
                    buf = f.read((stop - start) * pair)
                    if len(buf) != (stop - start) * pair:
                        raise UserError(f"{label}: truncated at image {start}")
                    camera0 = np.frombuffer(buf, np.uint8).reshape(stop - start, 2, side, side)[:, 0]
                    yield camera0[..., None], grid.rows(first + start, first + stop)
            first += n

    return Conversion(num_images=total, channels=1, chunks=chunks, factors=grid.factors,
                      nuisance=grid.nuisance)


READER = Reader(name="smallnorb", folder=True, accept=lambda name: bool(_NAME.match(name)),
                path_help="the folder holding the six "
                          "smallnorb-5x*-{training,testing}-{dat,cat,info}.mat files",
                open=open_smallnorb, select=select_smallnorb)


@DATASETS.register("smallnorb")
def make_smallnorb(*, resolution: int, path: str | None = None) -> CachedGroundTruth | CachedImages:
    """SmallNORB from the folder ``path``, converted to ``resolution``."""
    return load(READER, path, resolution)
