"""Time the quality metrics on feature sets the size of the evaluator's defaults.

    python bench/quality_speed.py [NUM_POINTS [FEATURES]]

Real and generated features are Gaussian ``(NUM_POINTS, FEATURES)`` sets (default 5,000 x 128,
the factor-net extractor's width), the second shifted a little. Prints one row per metric with
its default parameters: seconds (best of ``REPEATS``) and the value. The last row times
Inception-v3 features (random weights, 32 px grayscale images resized to 299) for reference.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disentune.metrics.fid import compute_fid  # noqa: E402
from disentune.metrics.inception import InceptionExtractor, InceptionV3  # noqa: E402
from disentune.metrics.kid import compute_kid  # noqa: E402
from disentune.metrics.precision_recall import compute_precision_recall  # noqa: E402

REPEATS = 2


def best_of(fn: Callable[[], dict]) -> tuple[float, dict]:
    times, out = [], {}
    for _ in range(REPEATS):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return min(times), out


def main(num_points: int, features: int) -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(num_points, features))
    generated = rng.normal(loc=0.05, scale=1.1, size=(num_points, features))
    rows = [
        ("fid", lambda: compute_fid(real, generated), "fid"),
        ("kid (100 x 1000)", lambda: compute_kid(real, generated, rng=np.random.default_rng(1)), "kid"),
        ("precision_recall (k=3)", lambda: compute_precision_recall(real, generated), "precision"),
    ]
    print(f"{num_points} x {features} features, torch threads {torch.get_num_threads()}")
    print(f"{'metric':<24} {'seconds':>8}  value")
    for name, fn, key in rows:
        seconds, out = best_of(fn)
        extra = f", recall {out['recall']:.3f}" if key == "precision" else ""
        print(f"{name:<24} {seconds:>8.2f}  {key} {out[key]:.4f}{extra}")
    torch.manual_seed(0)
    extractor = InceptionExtractor(InceptionV3().eval(), "inception-v3:random")
    images = rng.random((32, 1, 32, 32)).astype(np.float32)
    extractor(images[:2])  # warm up
    began = time.perf_counter()
    extractor(images)
    seconds = time.perf_counter() - began
    print(f"{'inception-v3, 32 images':<24} {seconds:>8.2f}  {len(images) / seconds:.1f} images/s")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [5000, 128][len(args):]))
