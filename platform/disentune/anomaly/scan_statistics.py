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
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import xlogy

from disentune.errors import ConfigError

ScanStatistic = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _broadcast(n_alpha, n, alpha) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, size, a = np.broadcast_arrays(
        np.asarray(n_alpha, dtype=float), np.asarray(n, dtype=float), np.asarray(alpha, dtype=float)
    )
    return x, size, a, np.where(size > 0, size, 1.0)


def berk_jones(n_alpha, n, alpha) -> np.ndarray:
    """``N * KL(N_alpha / N || alpha)`` where ``N_alpha / N > alpha``, else 0 (broadcast shapes)."""
    x, size, a, safe = _broadcast(n_alpha, n, alpha)
    x = np.clip(x, 0.0, size)  # rounding in summed expected counts must not leave [0, N]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = xlogy(x, x / (safe * a)) + xlogy(size - x, (size - x) / (safe * (1.0 - a)))
    return np.where((size > 0) & (x > size * a), value, 0.0)


def higher_criticism(n_alpha, n, alpha) -> np.ndarray:
    """``(N_alpha - N alpha) / sqrt(N alpha (1 - alpha))``, 0 when ``N = 0`` (broadcast shapes)."""
    x, size, a, safe = _broadcast(n_alpha, n, alpha)
    value = (x - size * a) / np.sqrt(safe * a * (1.0 - a))
    return np.where(size > 0, value, 0.0)


def kolmogorov_smirnov(n_alpha, n, alpha) -> np.ndarray:
    """``(N_alpha - N alpha) / sqrt(N)``, 0 when ``N = 0`` (broadcast shapes)."""
    x, size, a, safe = _broadcast(n_alpha, n, alpha)
    return np.where(size > 0, (x - size * a) / np.sqrt(safe), 0.0)


STATISTICS: dict[str, ScanStatistic] = {
    "berk_jones": berk_jones,
    "higher_criticism": higher_criticism,
    "kolmogorov_smirnov": kolmogorov_smirnov,
}


def get_statistic(name: str) -> ScanStatistic:
    """The scan statistic called ``name``; a clear error naming the choices otherwise."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scan statistic {name!r}; choose from {', '.join(sorted(STATISTICS))}"
        ) from None


def alpha_counts(alpha, pmin, pmax=None) -> np.ndarray:
    """Expected indicator ``n_alpha`` of each p-value range at level ``alpha`` (broadcast shapes).

    Point p-values (``pmax`` None or equal to ``pmin``) give ``1[p <= alpha]``; ranges give the
    fraction of ``[pmin, pmax]`` that lies at or below ``alpha``.
    """
    a = np.asarray(alpha, dtype=float)
    lo = np.asarray(pmin, dtype=float)
    hi = lo if pmax is None else np.asarray(pmax, dtype=float)
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((a - lo) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    return np.where(width > 0, frac, (lo <= a).astype(float))
