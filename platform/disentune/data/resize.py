"""Area-averaged resizing of uint8 image chunks, exact in integer arithmetic, and centre crops.

Every reader and every image collection goes through :func:`area_resize`, so one rule makes every
cache. Output pixel ``i`` of a side resized from ``H`` to ``R`` averages the source pixels
``[floor(i H / R), ceil((i + 1) H / R))``: the windows of adaptive average pooling, which is what
``torch.nn.functional.interpolate(mode="area")`` computes. Here the window sums are integers and
the mean is rounded half up, ``(sum + count // 2) // count``, so the result never depends on
floating-point summation order (torch's float mean differs from it by at most one level).

- ``H`` a multiple of ``R`` (64 -> 32, 128 -> 64): exact block means of ``H/R x H/R`` pixels.
- Other downscales (SmallNORB's 96 -> 64): windows of ``ceil(H/R)`` or ``ceil(H/R) + 1`` pixels
  that overlap by at most one pixel.
- Upscaling (``R > H``): each output pixel averages the one or two source pixels its window
  touches, i.e. pixel replication with a 50/50 blend where a source pixel boundary falls inside
  the output pixel; no interpolation, no sharpening. An exact integer factor is pure replication.
"""

from __future__ import annotations

import numpy as np


def windows(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) source indices ``(size_out,)`` of each output pixel."""
    i = np.arange(size_out, dtype=np.int64)
    return (i * size_in) // size_out, -((-(i + 1) * size_in) // size_out)


def _sum_dtype(max_count: int) -> type:
    return np.uint16 if 255 * max_count + max_count // 2 <= np.iinfo(np.uint16).max else np.uint32


def _window_sums(x: np.ndarray, axis: int, size_out: int, dtype: type) -> np.ndarray:
    """Sums over the windows of ``axis`` (1 or 2) of ``x`` ``(n, H, W, C)``; the axis becomes
    ``size_out`` long. Adds the j-th pixel of every window (masked where a window is shorter)."""
    start, end = windows(x.shape[axis], size_out)
    if x.shape[axis] == size_out:
        return x.astype(dtype, copy=False)
    out = np.take(x, start, axis=axis).astype(dtype)
    shape = [1] * x.ndim
    shape[axis] = size_out
    for j in range(1, int((end - start).max())):
        part = np.take(x, np.minimum(start + j, end - 1), axis=axis)
        valid = start + j < end
        out += part if valid.all() else part * valid.reshape(shape).astype(part.dtype)
    return out


def area_resize(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize uint8 images ``(n, H, W, C)`` to ``(n, R, R, C)`` by area averaging (see module)."""
    n, h, w, c = images.shape
    if h == w == resolution:
        return images
    starts_h, ends_h = windows(h, resolution)
    starts_w, ends_w = windows(w, resolution)
    count = (ends_h - starts_h)[:, None] * (ends_w - starts_w)[None, :]  # (R, R)
    dtype = _sum_dtype(int(count.max()))
    sums = _window_sums(_window_sums(images, 1, resolution, dtype), 2, resolution, dtype)
    if count.min() == count.max():
        k = dtype(count.flat[0])
        sums += k // 2
        sums //= k
        return sums.astype(np.uint8)
    count = count[None, :, :, None].astype(dtype)
    return ((sums + count // 2) // count).astype(np.uint8)


def centre_square(images: np.ndarray) -> np.ndarray:
    """The largest centred square ``(..., s, s, C)`` of images ``(..., H, W, C)``, ``s = min(H, W)``;
    an odd surplus leaves the extra row or column at the bottom or right."""
    h, w = images.shape[-3:-1]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return images[..., top : top + s, left : left + s, :]


def unit_float_to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] to levels ``round(255 x)`` (half up); the caller checks the range."""
    return np.floor(np.asarray(images, dtype=np.float64) * 255.0 + 0.5).astype(np.uint8)
