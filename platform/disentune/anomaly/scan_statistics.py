"""Non-parametric scan statistics F(alpha, N_alpha, N) (McFowland, Speakman & Neill 2013, section 3.2).

For a subset of ``N`` p-values of which ``N_alpha`` are significant at level ``alpha``, each statistic
measures how far the observed fraction ``N_alpha / N`` exceeds ``alpha`` (its expectation under
the null, where p-values are Uniform(0, 1)):

- Berk-Jones (Berk & Jones 1979): ``N * KL(N_alpha / N || alpha)`` when ``N_alpha / N > alpha``,
  else 0, with the Bernoulli divergence ``KL(q || a) = q log(q/a) + (1-q) log((1-q)/(1-a))``.
- Higher Criticism (Donoho & Jin 2004): ``(N_alpha - N alpha) / sqrt(N alpha (1 - alpha))``.
- Kolmogorov-Smirnov: ``(N_alpha - N alpha) / sqrt(N)``.

Every function broadcasts its three arguments, needs ``0 < alpha < 1``, and returns 0 for the empty
subset (``N = 0``). All three increase in ``N_alpha`` at fixed ``N`` and decrease in ``alpha`` at
fixed counts; for fixed ``alpha`` and ``N_alpha`` they decrease in ``N`` wherever they are positive.
These are the properties the linear-time subset scan relies on (see ``subset_scan``).

p-value ranges ``[pmin, pmax]`` (ties; see ``pvalues``) count fractionally, as the probability that
a p-value drawn uniformly from the range is ``<= alpha`` (McFowland et al. 2013, eq. 3)::

    n_alpha(p) = 1[pmin <= alpha]                                   if pmin == pmax
               = min(1, max(0, (alpha - pmin) / (pmax - pmin)))     otherwise

and ``N_alpha`` of a subset is the sum of these expected counts.

Bounds (:data:`BOUNDS`, used to skip levels of the per-sample scan of ranges). At a fixed ``alpha``
let ``c1`` nodes count 1 and the fractional counts ``w_1 >= w_2 >= ...`` be added in that order. A
count ``w <= alpha`` never raises a positive F (it lowers ``N_alpha / N`` towards ``alpha``), so only
the ``h`` "helpful" counts ``w_j > alpha`` matter (:func:`count_onset`), with ``S = sum_j w_j`` and
``Q = sum_j (w_j - alpha)^2`` over them. Then for every subset size ``k``,
``F(c1 + w_1 + ... + w_k, c1 + k)`` is at most

- ``F(c1 + S, c1 + S)`` (all three: F increases in ``N_alpha``, and ``F(n, n)`` increases in ``n``);
- Higher Criticism / KS: ``sqrt(c1 (1 - alpha)^2 + Q)``, over ``sqrt(alpha (1 - alpha))`` for HC, by
  Cauchy-Schwarz twice on ``c1 (1 - alpha) + sum_{i <= k} (w_i - alpha)`` over ``sqrt(c1 + k)``;
- Berk-Jones: ``F(c1, c1) + sum_j KL(w_j || alpha)`` (F is the perspective of a convex function,
  hence subadditive), and ``sum_j KL(w_j || a) <= min(Q / (a (1 - a)), S log(1/a) + (h - S) log(1/(1-a)))``
  (the chi-square bound on KL; dropping the entropy of ``w``).

Backends: every function here takes numpy arrays (the reference semantics, bit for bit as before)
or torch tensors (float64; any device), dispatching on its arguments' type (:func:`ops_for`). The
:class:`NumpyOps` / :class:`TorchOps` adapters name the few operations whose spelling differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import xlogy

from disentune.errors import ConfigError

ScanStatistic = Callable[[Any, Any, Any], Any]
#: ``bound(c1, h, s_lo, s_hi, q, alpha)``: an upper bound on the statistic at ``alpha`` (module docstring).
ScanBound = Callable[[Any, Any, Any, Any, Any, Any], Any]
#: counts within this relative distance below ``alpha`` are treated as helpful where it matters for
#: rounding (``n_alpha = alpha`` exactly for a range ``[0, 1]``)
BORDER = 1e-6


# functions numpy and torch spell alike (torch takes numpy's ``axis`` for its ``dim``)
_SHARED = ("where", "sqrt", "log", "concatenate", "cumsum", "argsort", "argmax", "minimum", "maximum",
           "bincount", "searchsorted", "count_nonzero", "amax", "amin")


class NumpyOps:
    """The numpy backend (default): numpy and scipy calls, exactly those of the reference code.

    Attributes named in ``_SHARED`` are the library's functions; ``xlogy`` is scipy's.
    """

    name = "numpy"
    device = None
    cells = 1 << 19  # cells of the temporary tables of one block of rows: they stay in the CPU caches

    def __init__(self) -> None:
        self._bind(np, xlogy, np.broadcast_arrays)

    def _bind(self, library: Any, xlogy_: Callable, broadcast: Callable) -> None:
        for function in _SHARED:
            setattr(self, function, getattr(library, function))
        self.xlogy, self.broadcast_arrays = xlogy_, broadcast

    def asarray(self, x: Any, integer: bool = False) -> np.ndarray:
        return np.asarray(x, dtype=np.int64 if integer else float)

    def zeros(self, shape: tuple[int, ...], dtype: str = "float") -> np.ndarray:
        return np.zeros(shape, dtype={"float": float, "int": np.int64, "bool": bool}[dtype])

    def full(self, shape: tuple[int, ...], value: float) -> np.ndarray:
        return np.full(shape, value, dtype=float)

    def arange(self, start: int, stop: int | None = None) -> np.ndarray:
        return np.arange(start, stop) if stop is not None else np.arange(start)

    def clip(self, x: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
        return np.clip(x, lo, hi)

    def errstate(self) -> contextlib.AbstractContextManager:
        return np.errstate(divide="ignore", invalid="ignore")

    def sort(self, x: np.ndarray) -> np.ndarray:
        return np.sort(x, axis=1)

    def take(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, index, axis=1)

    def put(self, out: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
        np.put_along_axis(out, index, values, axis=1)

    def cummax(self, x: np.ndarray) -> np.ndarray:
        return np.maximum.accumulate(x, axis=1)

    def unique(self, x: np.ndarray) -> np.ndarray:
        return np.unique(x)

    def expand(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, shape)

    def smallest(self, x: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` smallest entries of each row, ascending: ``(m, k)``."""
        return np.sort(np.partition(x, k - 1, axis=1)[:, :k] if k < x.shape[1] else x, axis=1)

    def nonzero(self, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        return np.nonzero(mask)

    def segment_max(self, values: np.ndarray, segment: np.ndarray, count: int, fill: float) -> np.ndarray:
        out = np.full(count, fill, dtype=values.dtype)
        np.maximum.at(out, segment, values)
        return out

    def segment_min(self, values: np.ndarray, segment: np.ndarray, count: int, fill: int) -> np.ndarray:
        out = np.full(count, fill, dtype=values.dtype)
        np.minimum.at(out, segment, values)
        return out

    def to_float(self, x: np.ndarray) -> np.ndarray:
        return x.astype(float)

    def to_int(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.int64)

    def numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)


class TorchOps(NumpyOps):
    """The torch backend on one device, float64 and int64 throughout (so results match numpy's)."""

    name = "torch"

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.device = torch, torch.device(device)
        self._bind(torch, torch.xlogy, torch.broadcast_tensors)
        if self.device.type == "cuda":  # large blocks: fewer kernel launches, the GPU's memory is ample
            self.cells = 1 << 24

    def asarray(self, x: Any, integer: bool = False) -> Any:
        dtype = self.torch.int64 if integer else self.torch.float64
        return self.torch.as_tensor(x, dtype=dtype, device=self.device)

    def zeros(self, shape: tuple[int, ...], dtype: str = "float") -> Any:
        kind = {"float": self.torch.float64, "int": self.torch.int64, "bool": self.torch.bool}[dtype]
        return self.torch.zeros(shape, dtype=kind, device=self.device)

    def full(self, shape: tuple[int, ...], value: float) -> Any:
        return self.torch.full(shape, float(value), dtype=self.torch.float64, device=self.device)

    def arange(self, start: int, stop: int | None = None) -> Any:
        bounds = (start,) if stop is None else (start, stop)
        return self.torch.arange(*bounds, device=self.device)

    def clip(self, x: Any, lo: Any, hi: Any) -> Any:
        if not isinstance(hi, self.torch.Tensor):
            return self.torch.clamp(x, min=lo, max=hi)
        return self.torch.minimum(self.torch.clamp(x, min=lo), hi)

    def errstate(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def sort(self, x: Any) -> Any:
        return self.torch.sort(x, dim=1).values

    def take(self, x: Any, index: Any) -> Any:
        return self.torch.take_along_dim(x, index, dim=1)

    def put(self, out: Any, index: Any, values: Any) -> None:
        out.scatter_(1, index, values)

    def cummax(self, x: Any) -> Any:
        return self.torch.cummax(x, dim=1).values

    def unique(self, x: Any) -> Any:
        return self.torch.unique(x, sorted=True)

    def expand(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.expand(*shape)

    def smallest(self, x: Any, k: int) -> Any:
        return self.torch.topk(x, k, dim=1, largest=False, sorted=True).values

    def nonzero(self, mask: Any) -> tuple[Any, ...]:
        return self.torch.nonzero(mask, as_tuple=True)

    def segment_max(self, values: Any, segment: Any, count: int, fill: float) -> Any:
        out = self.torch.full((count,), fill, dtype=values.dtype, device=self.device)
        return out.scatter_reduce_(0, segment, values, "amax")

    def segment_min(self, values: Any, segment: Any, count: int, fill: int) -> Any:
        out = self.torch.full((count,), fill, dtype=values.dtype, device=self.device)
        return out.scatter_reduce_(0, segment, values, "amin")

    def to_float(self, x: Any) -> Any:
        return x.to(self.torch.float64)

    def to_int(self, x: Any) -> Any:
        return x.to(self.torch.int64)

    def numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy() if isinstance(x, self.torch.Tensor) else np.asarray(x)


NUMPY = NumpyOps()


_TORCH: dict[Any, TorchOps] = {}


def _torch_ops(device: Any) -> TorchOps:
    if device not in _TORCH:
        _TORCH[device] = TorchOps(device)
    return _TORCH[device]


def ops_for(*arrays: Any) -> NumpyOps:
    """The backend of the arguments: :class:`TorchOps` on the first tensor's device, else numpy."""
    for value in arrays:
        if type(value).__module__.startswith("torch"):
            return _torch_ops(value.device)
    return NUMPY


def backend(device: Any = None) -> NumpyOps:
    """The backend for a ``device`` argument: None is numpy; "auto" is CUDA torch when there is a
    GPU, else numpy; anything else ("cpu", "cuda", "cuda:1", a ``torch.device``) is torch there."""
    if device is None:
        return NUMPY
    import torch

    if device == "auto":
        return _torch_ops(torch.device("cuda")) if torch.cuda.is_available() else NUMPY
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device must be None, 'auto', 'cpu' or 'cuda[:k]'; got {device!r}") from None
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device")
    return _torch_ops(where)


def _broadcast(n_alpha, n, alpha):
    ops = ops_for(n_alpha, n, alpha)
    x, size, a = ops.broadcast_arrays(ops.asarray(n_alpha), ops.asarray(n), ops.asarray(alpha))
    return ops, x, size, a, ops.where(size > 0, size, 1.0)


def berk_jones(n_alpha, n, alpha):
    """``N * KL(N_alpha / N || alpha)`` where ``N_alpha / N > alpha``, else 0 (broadcast shapes)."""
    ops, x, size, a, safe = _broadcast(n_alpha, n, alpha)
    x = ops.clip(x, 0.0, size)  # rounding in summed expected counts must not leave [0, N]
    with ops.errstate():
        value = ops.xlogy(x, x / (safe * a)) + ops.xlogy(size - x, (size - x) / (safe * (1.0 - a)))
    return ops.where((size > 0) & (x > size * a), value, 0.0)


def higher_criticism(n_alpha, n, alpha):
    """``(N_alpha - N alpha) / sqrt(N alpha (1 - alpha))``, 0 when ``N = 0`` (broadcast shapes)."""
    ops, x, size, a, safe = _broadcast(n_alpha, n, alpha)
    value = (x - size * a) / ops.sqrt(safe * a * (1.0 - a))
    return ops.where(size > 0, value, 0.0)


def kolmogorov_smirnov(n_alpha, n, alpha):
    """``(N_alpha - N alpha) / sqrt(N)``, 0 when ``N = 0`` (broadcast shapes)."""
    ops, x, size, a, safe = _broadcast(n_alpha, n, alpha)
    return ops.where(size > 0, (x - size * a) / ops.sqrt(safe), 0.0)


def berk_jones_bound(c1, h, s_lo, s_hi, q, alpha):
    """Upper bound on Berk-Jones over the subsets at ``alpha`` (module docstring; all ``(m,)``).

    ``s_lo <= S <= s_hi`` brackets the sum of helpful counts; ``q >= Q`` bounds their squared excess.
    """
    ops = ops_for(c1, alpha)
    a = alpha
    slope = ops.log(1.0 / a) - ops.log(1.0 / (1.0 - a))  # the linear KL bound is h log(1/(1-a)) + S slope
    linear = h * ops.log(1.0 / (1.0 - a)) + ops.maximum(s_lo * slope, s_hi * slope)
    added = ops.minimum(linear, q / (a * (1.0 - a)))
    return ops.minimum(berk_jones(c1, c1, a) + added, berk_jones(c1 + s_hi, c1 + s_hi, a))


def higher_criticism_bound(c1, h, s_lo, s_hi, q, alpha):
    """Upper bound on Higher Criticism over the subsets at ``alpha`` (module docstring)."""
    ops = ops_for(c1, alpha)
    spread = ops.sqrt(c1 * (1.0 - alpha) ** 2 + q) / ops.sqrt(alpha * (1.0 - alpha))
    return ops.minimum(spread, higher_criticism(c1 + s_hi, c1 + s_hi, alpha))


def kolmogorov_smirnov_bound(c1, h, s_lo, s_hi, q, alpha):
    """Upper bound on Kolmogorov-Smirnov over the subsets at ``alpha`` (module docstring)."""
    ops = ops_for(c1, alpha)
    return ops.minimum(ops.sqrt(c1 * (1.0 - alpha) ** 2 + q), kolmogorov_smirnov(c1 + s_hi, c1 + s_hi, alpha))


STATISTICS: dict[str, ScanStatistic] = {
    "berk_jones": berk_jones,
    "higher_criticism": higher_criticism,
    "kolmogorov_smirnov": kolmogorov_smirnov,
}
BOUNDS: dict[str, ScanBound] = {
    "berk_jones": berk_jones_bound,
    "higher_criticism": higher_criticism_bound,
    "kolmogorov_smirnov": kolmogorov_smirnov_bound,
}


def get_statistic(name: str) -> ScanStatistic:
    """The scan statistic called ``name``; a clear error naming the choices otherwise."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scan statistic {name!r}; choose from {', '.join(sorted(STATISTICS))}"
        ) from None


def alpha_counts(alpha, pmin, pmax=None):
    """Expected indicator ``n_alpha`` of each p-value range at level ``alpha`` (broadcast shapes).

    Point p-values (``pmax`` None or equal to ``pmin``) give ``1[p <= alpha]``; ranges give the
    fraction of ``[pmin, pmax]`` that lies at or below ``alpha``.
    """
    ops = ops_for(alpha, pmin, pmax)
    a = ops.asarray(alpha)
    lo = ops.asarray(pmin)
    hi = lo if pmax is None else ops.asarray(pmax)
    width = hi - lo
    with ops.errstate():
        frac = ops.clip((a - lo) / ops.where(width > 0, width, 1.0), 0.0, 1.0)
    return ops.where(width > 0, frac, ops.to_float(lo <= a))


def count_onset(pmin, pmax, border: float = 0.0):
    """``t = pmin / (1 - (1 - border) (pmax - pmin))`` (broadcast shapes): a range's count ``n_alpha``
    exceeds ``alpha (1 - border)`` iff ``alpha > t``, so it is "helpful" (module docstring) above
    ``t`` (``border`` 0); 1 where that never happens (``[0, 1]``: ``n_alpha = alpha``). Lowered by
    1e-9 relative against rounding."""
    ops = ops_for(pmin, pmax)
    spare = 1.0 - (1.0 - border) * (pmax - pmin)
    return ops.where(spare > 0, pmin / ops.where(spare > 0, spare, 1.0), 1.0) * (1.0 - 1e-9)


def near_helpful(lo: Any, hi: Any, alpha_max: float, ops: NumpyOps) -> tuple[Any, Any]:
    """``(near, onset)`` ``(R, J)``: the ranges whose count can exceed ``a (1 - 1e-6)`` at some level
    ``a <= alpha_max``, and the level above which it does (:func:`count_onset`).

    Only such counts are sorted and scored (``ltss._score_levels``); elsewhere every size past the
    ones lowers a positive statistic, by far more than rounding.
    """
    onset = count_onset(lo, hi, BORDER)
    return (hi > lo) & (onset < ops.minimum(hi, ops.full((1, 1), alpha_max))), onset
