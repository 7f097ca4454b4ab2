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
second search only for nodes where some test value ties a background value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from disentune.errors import ConfigError

Convention = Literal["point", "fgss"]
CONVENTIONS: tuple[str, ...] = ("point", "fgss")


class PValues(NamedTuple):
    """Empirical p-value ranges ``pmin <= pmax``, both ``(m, J)`` float64 in ``(0, 1]``."""

    pmin: np.ndarray
    pmax: np.ndarray

    @property
    def is_point(self) -> bool:
        """True when every range is a single value (no ties under the ``"point"`` convention)."""
        return self.pmin is self.pmax or bool(np.array_equal(self.pmin, self.pmax))


@dataclass(frozen=True)
class Background:
    """Clean background activations, sorted per node: ``sorted_by_node`` is ``(J, n)``, rows ascending."""

    sorted_by_node: np.ndarray

    @classmethod
    def from_activations(cls, activations: np.ndarray) -> Background:
        """Sort background activations ``(n, J)`` once, for repeated p-value computations."""
        a = np.asarray(activations)
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"background activations must be (n, J) with n, J >= 1; got {a.shape}")
        if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
            raise ValueError("background activations contain NaN")
        return cls(np.sort(np.ascontiguousarray(a.T), axis=1))

    @property
    def n(self) -> int:
        return int(self.sorted_by_node.shape[1])

    @property
    def num_nodes(self) -> int:
        return int(self.sorted_by_node.shape[0])


def tail_counts(test: np.ndarray, background: Background | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(#{b < x}, #{b <= x})`` per test value: two int64 arrays ``(m, J)``.

    ``test`` is ``(m, J)``; ``background`` a :class:`Background` or raw activations ``(n, J)``. When
    no test value ties a background value the two counts are equal and the same array is returned
    twice.
    """
    bg = background if isinstance(background, Background) else Background.from_activations(background)
    x = np.asarray(test)
    if x.ndim != 2 or x.shape[1] != bg.num_nodes:
        raise ValueError(f"test activations must be (m, {bg.num_nodes}); got {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("test activations contain NaN")
    xt = np.ascontiguousarray(x.T)  # (J, m): one contiguous row per node
    less = np.empty(xt.shape, dtype=np.int64)
    for j, column in enumerate(bg.sorted_by_node):
        less[j] = np.searchsorted(column, xt[j], side="left")
    # #{b <= x} differs from #{b < x} only where x ties a background value: search those nodes again
    flat_index = np.minimum(less, bg.n - 1) + (np.arange(bg.num_nodes) * bg.n)[:, None]
    probe = np.take(bg.sorted_by_node.reshape(-1), flat_index)
    tied_nodes = np.flatnonzero(((probe == xt) & (less < bg.n)).any(axis=1))
    less_t = less.T.copy()  # a copy even where the transpose is already contiguous (J = 1)
    if len(tied_nodes) == 0:
        return less_t, less_t
    for j in tied_nodes:
        less[j] = np.searchsorted(bg.sorted_by_node[j], xt[j], side="right")
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
    untied = less_equal is less
    n, shift = bg.n, 1 if convention == "point" else 0
    denom = float(n + 1)
    upper_max = (n + 1 - less) / denom  # #{b >= x} + 1
    point = untied and convention == "point"  # then pmin == pmax: share one array
    upper_min = upper_max if point else (n + shift - less_equal) / denom  # #{b > x} (+ 1)
    if tails == 1:
        return PValues(upper_min, upper_max)
    lower_max = (less_equal + 1) / denom  # #{b <= x} + 1
    lower_min = lower_max if point else (less + shift) / denom  # #{b < x} (+ 1)
    pmax = np.minimum(1.0, 2.0 * np.minimum(upper_max, lower_max))
    pmin = pmax if point else np.minimum(1.0, 2.0 * np.minimum(upper_min, lower_min))
    return PValues(pmin, pmax)
