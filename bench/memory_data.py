"""bench/memory.py's data sections: converting a full-size published file, and a training worker
reading the converted cache.

(d) **conversion**: a file shaped exactly as published is written first (outside the
measurement) into ``--data-dir``: Shapes3D's ``3dshapes.h5`` at its real 480,000 x 64 x 64 x 3
(5.9 GB of uncompressed pixels; ``--shapes3d-hues K`` keeps K of the 10 floor hues, i.e. K/10 of
the size, with a complete grid) and MPI3D's full 1,036,800-image ``images`` member (12.7 GB of
pixels) as a deflated npz of zeros (55 MB on disk: what is measured is the stream through the
zip member, resize and write, not the disk). Each conversion runs alone in a child process with an
empty cache (``import_dataset``), watched through ``/proc``.
(e) **a training worker** opens the converted Shapes3D entry and draws batches of 64 through
:class:`disentune.train.batches.TrainingImages`, as a trial does: over the whole set (decoded per
batch from the shared memory map) and over 10,000 images (kept resident as uint8).
"""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import numpy as np

from memory_helpers import load, mapped_rss, measure, mib, status

SHAPES3D_SIZES = (10, 10, 10, 8, 4, 15)
MPI3D_IMAGES = 1_036_800


def write_shapes3d(path: Path, floor_hues: int) -> int:
    """``3dshapes.h5`` with ``floor_hues`` x 48,000 images (random pixels), in grid order."""
    import h5py

    sizes = (floor_hues, *SHAPES3D_SIZES[1:])
    n = int(np.prod(sizes))
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, 6)
    values = (np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
              np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15))
    block = np.random.default_rng(0).integers(0, 256, (8000, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", shape=(n, 64, 64, 3), dtype=np.uint8)
        for start in range(0, n, len(block)):
            stop = min(n, start + len(block))
            images[start:stop] = np.roll(block[: stop - start], start // len(block), axis=0)
        f["labels"] = np.stack([values[k][grid[:, k]] for k in range(6)], axis=1)
    return n


def write_mpi3d_zeros(path: Path) -> int:
    """``mpi3d_real.npz``: ``images`` (1036800, 64, 64, 3) uint8 of zeros, deflated, streamed."""
    step = 1024
    zeros = bytes(step * 64 * 64 * 3)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open("images.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (MPI3D_IMAGES, 64, 64, 3)})
        for start in range(0, MPI3D_IMAGES, step):
            f.write(zeros[: (min(step, MPI3D_IMAGES - start)) * 64 * 64 * 3])
    return MPI3D_IMAGES


def _images_in(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f["images"].shape[0])


def _register() -> None:
    from disentune.data import mpi3d_npz, shapes3d_h5  # noqa: F401 - register the readers


def child_convert(dataset: str, path: str, resolution: int) -> dict:
    _register()
    from disentune.data.importer import import_dataset
    from disentune.registry import DATASETS

    DATASETS.names()  # every built-in module imported (torch among them), as in a trial
    imports = status()
    began = time.perf_counter()
    entry = import_dataset(dataset, path, resolution)
    return {"seconds": time.perf_counter() - began, "convert_seconds": entry.seconds,
            "images": entry.images, "bytes": entry.path.stat().st_size, "imports": imports,
            "end": status()}


def child_worker(dataset: str, path: str, resolution: int, train_size: int, batches: int) -> dict:
    _register()
    import torch

    from disentune.registry import DATASETS
    from disentune.train.batches import TrainingImages

    torch.set_num_threads(1)
    data = DATASETS.get(dataset)(resolution=resolution, path=path)
    rng = np.random.default_rng(0)
    index = (np.arange(data.num_images) if train_size == 0
             else np.sort(rng.choice(data.num_images, train_size, replace=False)))
    before = status()
    images = TrainingImages(data, index, torch.device("cpu"))
    loaded = status()
    gen = torch.Generator().manual_seed(0)
    began = time.perf_counter()
    for _ in range(batches):
        images.batch(torch.randint(0, len(images), (64,), generator=gen))
    return {"resident": images.resident, "before": before, "loaded": loaded, "end": status(),
            "mapped": mapped_rss(data.entry.path), "cache_bytes": data.entry.path.stat().st_size,
            "images": data.num_images, "batch_ms": 1000 * (time.perf_counter() - began) / batches}


def run_child(kind: str, rest: list[str]) -> dict:
    """memory.py ``--child data-...``: the data children."""
    if kind == "data-convert":
        return child_convert(rest[0], rest[1], int(rest[2]))
    if kind == "data-worker":
        return child_worker(rest[0], rest[1], int(rest[2]), int(rest[3]), int(rest[4]))
    raise SystemExit(f"unknown child {kind}")


def bench_data(work: Path, resolutions: list[int], floor_hues: int, with_mpi3d: bool, batches: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    files = []
    began = time.perf_counter()
    shapes = work / f"shapes3d-{floor_hues}" / "3dshapes.h5"  # kept in a given --data-dir: reused
    shapes.parent.mkdir(exist_ok=True)
    n = _images_in(shapes) if shapes.exists() else write_shapes3d(shapes, floor_hues)
    files.append(("shapes3d", shapes, n, n * 64 * 64 * 3))
    if with_mpi3d:
        mpi3d = work / "mpi3d_real.npz"
        if not mpi3d.exists():
            write_mpi3d_zeros(mpi3d)
        files.append(("mpi3d", mpi3d, MPI3D_IMAGES, MPI3D_IMAGES * 64 * 64 * 3))
    print(f"\n(d) converting a published file into the cache (one child process each, empty cache); "
          f"the files took {time.perf_counter() - began:.0f} s to write")
    print(f"{'file':<16} {'images':>9} {'pixels GB':>9} {'on disk MB':>10} {'px':>3} {'wall s':>6} "
          f"{'images/s':>8} {'cache MiB':>9} {'base anon':>9} {'peak RSS':>8} {'peak anon':>9} "
          f"{'peak file':>9}  load")
    caches: dict[int, Path] = {}
    for dataset, path, n, pixels in files:
        for r in resolutions:
            cache = work / f"cache-{dataset}-{r}"
            before = load()
            mon, res, wall = measure(["data-convert", dataset, str(path), str(r)],
                                     env={"DISENTUNE_CACHE": str(cache), "OMP_NUM_THREADS": "1"})
            main = mon.largest("main")
            print(f"{path.name:<16} {n:>9,} {pixels / 1e9:>9.1f} {path.stat().st_size / 1e6:>10,.0f} {r:>3} "
                  f"{wall:>6.0f} {n / res['convert_seconds']:>8,.0f} {mib(res['bytes']):>9} "
                  f"{mib(res['imports']['RssAnon']):>9} {mib(res['end']['VmHWM']):>8} {mib(main.get('anon', 0)):>9} {mib(main.get('file', 0)):>9}"
                  f"  {before} -> {load()}", flush=True)
            if dataset == "shapes3d":
                caches[r] = cache
            else:
                shutil.rmtree(cache, ignore_errors=True)
    print("pixels GB: the source's uint8 pixels (1e9 bytes); wall s: listing, sha256 of the file and "
          "conversion; base anon: after importing disentune's modules, before the conversion; peak RSS: "
          "the child's VmHWM (exact); peak anon / file: polled RssAnon / RssFile. The converter writes with pwrite, not a memory map, "
          "so pages it has written are in the page cache, not in its RSS.")

    print(f"\n(e) a training worker reading the converted Shapes3D cache (TrainingImages, {batches} "
          f"batches of 64, one thread)")
    print(f"{'px':>3} {'train_size':>10} {'resident':>8} {'anon before':>11} {'anon loaded':>11} "
          f"{'anon end':>8} {'cache mapped':>12} {'cache MiB':>9} {'whole set float32':>17} {'ms/batch':>8}")
    for r, cache in caches.items():
        for size in (10_000, 0):
            mon, res, _ = measure(["data-worker", "shapes3d", str(shapes), str(r), str(size), str(batches)],
                                  env={"DISENTUNE_CACHE": str(cache), "OMP_NUM_THREADS": "1"})
            print(f"{r:>3} {size or res['images']:>10,} {str(res['resident']):>8} "
                  f"{mib(res['before']['RssAnon']):>11} {mib(res['loaded']['RssAnon']):>11} "
                  f"{mib(res['end']['RssAnon']):>8} {mib(res['mapped']):>12} {mib(res['cache_bytes']):>9} "
                  f"{mib(res['images'] * 3 * r * r * 4):>17} {res['batch_ms']:>8.1f}", flush=True)
    print("MiB. anon: the worker's private memory before TrainingImages, once built, after the batches; "
          "cache mapped: resident pages of the shared cache file in this worker (page cache, one copy per "
          "machine); whole set float32: what decoding every image would cost a worker.")
