"""How fast each procedural dataset renders its cache and decodes images.

    python bench/data_speed.py [--resolutions 32 64] [--batches 100] [--h5 16]

One row per (dataset, resolution): the seconds to render its cache the first time (0 when it
was already there, since the variants of dSprites share dSprites' cache), then images/s of
``images_at`` for random batches of 64 as uint8 levels (a resident training set) and as float32
(per-batch decoding), and the milliseconds of one random batch of 1,000 float32 images. Each
rate is the median over ``--batches`` batches of fresh random indices. ``--h5 R`` also times
``write_h5`` of the whole 480,000-image grid at ``R`` px (gzip), with the file's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import disentune.data.dsprites_variants  # noqa: E402,F401  (registers color_ and noisy_dsprites)
import disentune.data.shapes3d_procedural as shapes3d  # noqa: E402
from disentune.registry import DATASETS  # noqa: E402

NAMES = ("dsprites", "color_dsprites", "noisy_dsprites", "shapes3d_procedural")


def median_rate(data, batch: int, batches: int, dtype: type, rng: np.random.Generator) -> float:
    """Median images/s of ``images_at`` over ``batches`` random batches of ``batch``."""
    seconds = []
    for _ in range(batches):
        index = rng.integers(0, data.num_images, batch)
        began = time.perf_counter()
        data.images_at(index, dtype=dtype)
        seconds.append(time.perf_counter() - began)
    return batch / float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--h5", type=int, default=None, metavar="R")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"threads OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cache "
          f"{os.environ.get('DISENTUNE_CACHE', '~/.cache/disentune')}")
    print(f"{'dataset':<20} {'R':>4} {'render s':>9} {'uint8 img/s':>12} {'float img/s':>12} "
          f"{'1000 float ms':>14}")
    for r in args.resolutions:
        for name in NAMES:
            data = DATASETS.get(name)(resolution=r)
            began = time.perf_counter()
            data.render()
            render = time.perf_counter() - began
            data.images_at(np.arange(64))  # map the cache
            u8 = median_rate(data, 64, args.batches, np.uint8, rng)
            f32 = median_rate(data, 64, args.batches, np.float32, rng)
            thousand = 1000 / median_rate(data, 1000, max(3, args.batches // 20), np.float32, rng)
            print(f"{name:<20} {r:>4} {render:>9.2f} {u8:>12,.0f} {f32:>12,.0f} "
                  f"{thousand * 1e3:>14.1f}")
    if args.h5:
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            path = shapes3d.write_h5(Path(tmp) / "3dshapes.h5", resolution=args.h5)
            seconds = time.perf_counter() - began
            print(f"write_h5 480,000 images at {args.h5} px: {seconds:.1f} s, "
                  f"{path.stat().st_size / 2**20:.0f} MiB (gzip)")


if __name__ == "__main__":
    main()
