"""The factor grid of a published file, derived from its labels and checked.

A file's labels ``(n, K)`` (class indices or factor values, one column per factor in the
documented order, a nuisance column last if there is one) define the grid: factor ``k`` takes the
sorted unique values of column ``k``, so a reduced grid is read as such. Every combination must
occur exactly once. The file's rows are then either already in grid order (row-major, last
column fastest: the cache is the file) or are reordered: file row ``i`` goes to cache row
``dest[i]``. Anything else is refused with the reason and an example, e.g.

    ``3dshapes.h5: incomplete grid: 12 of 480000 factor combinations missing, e.g. floor_hue=0.3,
    wall_hue=0, ...``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from disentune.data.ground_truth import Factor
from disentune.errors import UserError


@dataclass(frozen=True)
class Grid:
    """Public factors, the nuisance variable (name, size) if any, and the row order."""

    factors: tuple[Factor, ...]
    nuisance: tuple[str, int] | None
    dest: np.ndarray | None  # (n,) cache row of each file row; None: the file is in grid order

    @property
    def size(self) -> int:
        return int(np.prod([f.size for f in self.factors])) * (self.nuisance[1] if self.nuisance else 1)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Cache rows ``(stop - start,)`` of file rows ``start .. stop - 1``."""
        if self.dest is None:
            return np.arange(start, stop, dtype=np.int64)
        return self.dest[start:stop]


def _describe(names: Sequence[str], values: Sequence[np.ndarray], flat: int, sizes: np.ndarray) -> str:
    classes = np.unravel_index(flat, tuple(int(s) for s in sizes))
    return ", ".join(f"{n}={v[c]:g}" for n, v, c in zip(names, values, classes))


def grid_from_labels(
    labels: np.ndarray, names: Sequence[str], label: str, *,
    nuisance: bool = False, value_labels: Mapping[str, tuple[str, ...]] | None = None,
) -> Grid:
    """The grid of ``labels`` ``(n, K)`` with column names ``names`` (see the module docstring).

    With ``nuisance`` the last column is the nuisance variable; ``value_labels`` gives category
    names for a factor whose size matches.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(names) or not np.issubdtype(labels.dtype, np.number):
        raise UserError(f"{label}: labels must be a numeric ({len(labels)}, {len(names)}) array, "
                        f"got {labels.dtype} {labels.shape}")
    if not np.isfinite(labels).all():
        raise UserError(f"{label}: labels contain NaN or infinite values")
    values, classes = [], np.empty(labels.shape, dtype=np.int64)
    for k in range(len(names)):
        uniq, inverse = np.unique(labels[:, k], return_inverse=True)
        values.append(uniq.astype(np.float64))
        classes[:, k] = inverse.ravel()
    sizes = np.array([len(v) for v in values], dtype=np.int64)
    total = int(np.prod(sizes))
    strides = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)
    flat = classes @ strides
    counts = np.bincount(flat, minlength=total)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise UserError(f"{label}: incomplete grid: {missing.size} of {total} factor combinations "
                        f"missing, e.g. {_describe(names, values, int(missing[0]), sizes)}")
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        raise UserError(f"{label}: {repeated.size} factor combinations appear more than once, e.g. "
                        f"{_describe(names, values, int(repeated[0]), sizes)}")
    value_labels = value_labels or {}
    public = len(names) - 1 if nuisance else len(names)
    factors = tuple(Factor(n, v, value_labels[n] if len(value_labels.get(n, ())) == len(v) else None)
                    for n, v in zip(names[:public], values[:public]))
    in_order = bool(np.array_equal(flat, np.arange(total)))
    return Grid(factors, (names[-1], int(sizes[-1])) if nuisance else None, None if in_order else flat)
