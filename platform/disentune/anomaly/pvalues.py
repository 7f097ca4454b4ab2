"""Empirical p-values of test activations against a clean background, one column (node) at a time.

For a test value ``x`` at node ``j`` and the ``n`` background values ``b`` of that node, the
one-sided (upper-tail: large activations are anomalous) empirical p-value is a range
``[pmin, pmax]`` whose width reflects ties between ``x`` and the background:

``convention="point"`` (the default)::

    pmax = (#{b >= x} + 1) / (n + 1)
    pmin = (#{b >  x} + 1) / (n + 1)

Without ties ``pmin == pmax``: the usual conservative permutation p-value, which counts the test
value itself (so ``P(p <= alpha) <= alpha`` under the null and ``p >= 1 / (n + 1)``). A tie with
``t`` background values widens it to ``t / (n + 1)``.

``convention="fgss"``::

    pmax = (#{b >= x} + 1) / (n + 1)
    pmin =  #{b >  x}      / (n + 1)

This is the range of McFowland, Speakman & Neill 2013 ("Fast Generalized Subset Scan for Anomalous
Pattern Detection", JMLR 14, section 3.1, empirical p-value ranges) and of the reference
implementation of Cintas et al. 2020 ("Detecting Adversarial Attacks via Subset Scanning of
Autoencoder Activations and Reconstruction Error", IJCAI; the subset-scanning detector of the
Adversarial Robustness Toolbox). The range always has width >= 1 / (n + 1), and a p-value drawn
uniformly in it is exactly Uniform(0, 1) under the null. Note that that implementation scans only
``pmax``, which equals the ``"point"`` p-value whenever there are no ties.

Two tails: each endpoint is twice the smaller of the upper- and lower-tail endpoints, clipped to 1::

    p_lower = (#{b <= x} + 1) / (n + 1)   (pmin: #{b < x} + 1, or #{b < x} for "fgss")
    p_two   = min(1, 2 * min(p_upper, p_lower))       for pmin and pmax separately

(the usual doubling of the smaller one-sided p-value). For a lower tail alone, negate the
activations.

Cost: the background is sorted once per node (``O(n log n)``, :class:`Background`); each test
column is then placed with ``np.searchsorted``, ``O(m log n)`` per node for ``m`` test samples (a
second search only for nodes where some test value ties a background value). With a torch
``device`` (:meth:`Background.from_activations`) the background lives there and all nodes are
placed by one batched ``torch.searchsorted``; counts, and so p-values, are identical to numpy's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from disentune.anomaly.scan_statistics import NUMPY, backend, ops_for
from disentune.errors import ConfigError

Convention = Literal["point", "fgss"]
CONVENTIONS: tuple[str, ...] = ("point", "fgss")


class PValues(NamedTuple):
    """Empirical p-value ranges ``pmin <= pmax``, both ``(m, J)`` float64 in ``(0, 1]``.

    numpy arrays, or torch tensors on the background's device when it has one.
    """

    pmin: Any
    pmax: Any

    @property
    def is_point(self) -> bool:
        """True when every range is a single value (no ties under the ``"point"`` convention)."""
        return self.pmin is self.pmax or bool((self.pmin == self.pmax).all())


@dataclass(frozen=True)
class Background:
    """Clean background activations, sorted per node: ``sorted_by_node`` is ``(J, n)``, rows ascending.

    A numpy array, or a float64 torch tensor on the device it was built for.
    """

    sorted_by_node: Any

    @classmethod
    def from_activations(cls, activations: Any, device: Any = None) -> Background:
        """Sort background activations ``(n, J)`` once, for repeated p-value computations.

        ``device`` None keeps numpy; "cpu", "cuda", ... (or "auto") sorts and keeps it in torch there.
        """
        ops = backend(device) if device is not None else ops_for(activations)
        a = np.asarray(activations) if ops is NUMPY else ops.asarray(activations)
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"background activations must be (n, J) with n, J >= 1; got {tuple(a.shape)}")
        if _has_nan(a):
            raise ValueError("background activations contain NaN")
        if ops is NUMPY:
            return cls(np.sort(np.ascontiguousarray(a.T), axis=1))
        return cls(ops.sort(a.T.contiguous()))

    @property
    def n(self) -> int:
        return int(self.sorted_by_node.shape[1])

    @property
    def num_nodes(self) -> int:
        return int(self.sorted_by_node.shape[0])


def _has_nan(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return bool(np.issubdtype(x.dtype, np.floating) and np.isnan(x).any())
    return bool(x.isnan().any()) if x.is_floating_point() else False


def _placed_numpy(sorted_by_node: np.ndarray, test_t: np.ndarray, side: str, out: np.ndarray,
                  nodes: Any = None) -> np.ndarray:
    """``searchsorted`` of test rows ``(J, m)`` in their node's sorted background ``(J, n)``, into
    ``out`` (for ``nodes``, default all)."""
    for j in range(len(test_t)) if nodes is None else nodes:
        out[j] = sorted_by_node[j].searchsorted(test_t[j], side=side)
    return out


def tail_counts(test: Any, background: Background | Any) -> tuple[Any, Any]:
    """``(#{b < x}, #{b <= x})`` per test value: two int64 arrays ``(m, J)``.

    ``test`` is ``(m, J)``; ``background`` a :class:`Background` or raw activations ``(n, J)``. When
    no test value ties a background value the two counts are equal and the same array is returned
    twice. On a torch background, both are tensors on its device.
    """
    bg = background if isinstance(background, Background) else Background.from_activations(background)
    ops = ops_for(bg.sorted_by_node)
    if ops is NUMPY:
        x = np.asarray(test)
    else:
        x = ops.torch.as_tensor(test, device=ops.device).to(bg.sorted_by_node.dtype)
    if x.ndim != 2 or x.shape[1] != bg.num_nodes:
        raise ValueError(f"test activations must be (m, {bg.num_nodes}); got {tuple(x.shape)}")
    if _has_nan(x):
        raise ValueError("test activations contain NaN")
    return _counts_numpy(bg, x) if ops is NUMPY else _counts_torch(bg, x, ops)


def _counts_torch(bg: Background, x: Any, ops: Any) -> tuple[Any, Any]:
    """:func:`tail_counts` on a torch background: one batched search per side."""
    xt = x.T.contiguous()
    less = ops.searchsorted(bg.sorted_by_node, xt, side="left").T.contiguous()
    less_equal = ops.searchsorted(bg.sorted_by_node, xt, side="right").T.contiguous()
    return (less, less) if bool((less == less_equal).all()) else (less, less_equal)


def _counts_numpy(bg: Background, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tail_counts` in numpy: one search per node (sorting the queries first, or merging,
    is no faster on tied data)."""
    xt = np.ascontiguousarray(x.T)  # (J, m): one contiguous row per node
    less = _placed_numpy(bg.sorted_by_node, xt, "left", np.empty(xt.shape, dtype=np.int64))
    # #{b <= x} differs from #{b < x} only where x ties a background value: search those nodes again
    probe = np.take_along_axis(bg.sorted_by_node, np.minimum(less, bg.n - 1), axis=1)
    tied_nodes = np.flatnonzero(((probe == xt) & (less < bg.n)).any(axis=1))
    less_t = less.T.copy()  # a copy even where the transpose is already contiguous (J = 1)
    if len(tied_nodes) == 0:
        return less_t, less_t
    _placed_numpy(bg.sorted_by_node, xt, "right", less, tied_nodes)
    return less_t, np.ascontiguousarray(less.T)


def empirical_pvalues(
    test: np.ndarray,
    background: Background | np.ndarray,
    *,
    tails: int = 1,
    convention: Convention = "point",
) -> PValues:
    """Empirical p-value ranges of ``test (m, J)`` against ``background`` (``(n, J)`` or sorted).

    ``tails=1`` is the upper tail (large activations are anomalous), ``tails=2`` doubles the smaller
    tail; see the module docstring for the exact formulas of each ``convention``.
    """
    if tails not in (1, 2):
        raise ConfigError(f"tails must be 1 or 2; got {tails!r}")
    if convention not in CONVENTIONS:
        raise ConfigError(f"unknown p-value convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    bg = background if isinstance(background, Background) else Background.from_activations(background)
    less, less_equal = tail_counts(test, bg)
    ops = ops_for(less)
    untied = less_equal is less
    n, shift = bg.n, 1 if convention == "point" else 0
    denom = float(n + 1)

    def ratio(count: Any) -> Any:  # count / (n + 1) in float64 (torch would divide into float32)
        return count / denom if ops is NUMPY else ops.to_float(count) / denom

    upper_max = ratio(n + 1 - less)  # #{b >= x} + 1
    point = untied and convention == "point"  # then pmin == pmax: share one array
    upper_min = upper_max if point else ratio(n + shift - less_equal)  # #{b > x} (+ 1)
    if tails == 1:
        return PValues(upper_min, upper_max)
    lower_max = ratio(less_equal + 1)  # #{b <= x} + 1
    lower_min = lower_max if point else ratio(less + shift)  # #{b < x} (+ 1)
    pmax = ops.clip(2.0 * ops.minimum(upper_max, lower_max), 0.0, 1.0)  # doubled, at most 1
    pmin = pmax if point else ops.clip(2.0 * ops.minimum(upper_min, lower_min), 0.0, 1.0)
    return PValues(pmin, pmax)
