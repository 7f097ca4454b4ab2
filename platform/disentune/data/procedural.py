"""What the procedural colour datasets share: per-image random bytes, 8-bit pixels, atomic writes.

**Per-image randomness.** disentanglement_lib draws a fresh colour (colour dSprites) or a fresh
noise background (noisy dSprites) every time it samples an observation. Here the randomness of
image ``index`` is a pure function of ``(seed, index)``: :func:`index_bytes` is a counter-based
generator (splitmix64, Steele, Lea & Flood 2014) evaluated for a whole batch in a few numpy
passes (numpy's Philox or ``SeedSequence([seed, index])`` would need one generator object per
image, a Python loop per batch), so image ``i`` is the same image in every batch, in any batch
order, on every worker, resident or decoded per batch, and in every process and numpy version.
That keeps what the platform measures repeatable: the FID reference set, the metrics' samples, a
trial replayed from its seed and an anomaly benchmark's held-out images are the same pixels.
What changes against disentanglement_lib is only that each grid image has one colour or noise
pattern (737,280 independent draws; ``nuisance_size`` stays 1) instead of a new one per visit;
colour and noise are still independent of every factor, so the factor statistics are unchanged.

**8-bit pixels.** Colour images are quantised to 8 bits like the published files (3dshapes ships
uint8), so these datasets have ``uint8_max = 255`` (``ImageData.uint8_max`` in
data/ground_truth.py): ``images_at(index, dtype=np.uint8)`` is ``round(255 * x)`` and the float
images are exactly those levels divided by 255 (:func:`from_uint8`, as the conversion cache's
readers do), so a resident uint8 training set scaled by ``1 / uint8_max`` and per-batch float
decoding give identical batches.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from disentune.errors import UserError

UINT8_MAX = 255  # the uint8_max of the colour datasets: level ``b`` stands for ``b / 255``

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # the golden-ratio Weyl increment of splitmix64
_STREAM = np.uint64(0xD1B54A32D192ED03)  # separates the image streams from the dataset seeds


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, a bijection of uint64 with full avalanche (arrays wrap mod 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def index_bytes(seed: int, index: np.ndarray, nbytes: int) -> np.ndarray:
    """``nbytes`` uniform random bytes per image, a pure function of ``(seed, index)``.

    ``index`` ``(n,)`` int; returns uint8 ``(n, nbytes)``. Image ``i``'s bytes are word ``j`` of
    a splitmix64 stream started at ``mix(seed_key + i * STREAM)``, word ``j`` being
    ``mix(start + (j + 1) * GAMMA)`` as little-endian bytes. Vectorised over images and words,
    so a batch costs a few passes over its bytes (no Python loop over images).
    """
    index = np.asarray(index, dtype=np.int64).astype(np.uint64)
    words = -(-nbytes // 8)
    key = _mix64(np.array([seed], dtype=np.uint64))
    start = _mix64(key + index * _STREAM)  # (n,)
    steps = (np.arange(1, words + 1, dtype=np.uint64) * _GAMMA)[None, :]
    out = _mix64(start[:, None] + steps).astype("<u8", copy=False)  # (n, words)
    return out.view(np.uint8)[:, :nbytes]


def from_uint8(images: np.ndarray, dtype: type) -> np.ndarray:
    """8-bit images as ``dtype``: uint8 unchanged (0..255), a float type as ``images / 255``."""
    if np.dtype(dtype) == np.uint8:
        return images
    return np.divide(images, UINT8_MAX, dtype=dtype)


def refuse_path(dataset: str, path: str | Path | None) -> None:
    """Procedural datasets read no file: a ``path`` is a one-line :class:`UserError`."""
    if path is not None:
        raise UserError(
            f"data.path: dataset {dataset} is rendered by the platform and reads no file, "
            f"got {str(path)!r}; remove data.path"
        )


def write_atomically(path: Path, write: Callable[[Path], None], needed: int | None = None) -> Path:
    """``write(tmp)`` a file next to ``path``, then rename it to ``path`` in one step.

    Concurrent workers may write at once; each writes its own temporary file and the last
    ``os.replace`` wins, so a reader never sees a half-written file. A full disk is one
    :class:`UserError` naming ``path`` and the ``needed`` bytes, and leaves no temporary file.
    """
    from disentune.storage import is_no_space, no_space

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    except OSError as err:
        if is_no_space(err):
            raise no_space(path, needed) from None
        raise
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as err:
        if not is_no_space(err):
            raise
        os.unlink(tmp)
        raise no_space(path, needed) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_atomically(path: Path, fill: Callable[[], np.ndarray]) -> Path:
    """Save ``fill()`` to ``path`` as ``.npy`` (atomically) unless it is there; return ``path``."""
    if path.exists():
        return path
    from disentune.storage import write_local

    buffer = io.BytesIO()
    np.save(buffer, fill())
    write_local(path, buffer.getvalue())  # atomic; a full disk is one line naming the path
    return path
