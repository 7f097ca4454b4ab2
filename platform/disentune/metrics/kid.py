"""Kernel Inception Distance (Binkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs").

KID is the squared maximum mean discrepancy between the feature distributions of real and
generated images under the cubic polynomial kernel on ``f``-dimensional features

    k(x, y) = (x . y / f + 1)^3

estimated without bias (their Eq. 2, the U-statistic of Gretton et al. 2012, Lemma 6) from
``m`` real features ``x`` and ``m`` generated features ``y``:

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
              - 2/m^2 sum_{i, j} k(x_i, y_j)

Following the paper's reference code, the estimate is averaged over ``num_subsets`` random subsets
of ``subset_size`` points drawn without replacement from each set; the reported spread is the
standard deviation across subsets (``ddof = 0``). This is torch-fidelity's KID (``kid_subsets``,
``kid_subset_size``, the same kernel and unbiased estimate): given ``np.random.RandomState(s)`` as
``rng`` the subsets are the ones torch-fidelity draws with ``rng_seed=s`` (real, then generated,
one ``choice(n, size, replace=False)`` each per subset), and the values equal its values; the
tests run torch-fidelity 0.4.0. Unlike FID the estimate is unbiased, so it can be slightly
negative when both sets come from the same distribution. As with FID, the value depends on the
feature extractor, whose name travels with it.

>>> x = np.array([[0.0], [1.0]]); y = np.array([[1.0], [2.0]])
>>> round(mmd2_unbiased(x, y), 6)  # (1 + 27 - 2 * 37 / 4), worked out in the tests
9.5
"""

from __future__ import annotations

import numpy as np

from disentune.metrics.base import metric


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kernel matrix ``(n, m)`` of ``k(x, y) = (x . y / f + 1)^3`` for ``x (n, f)``, ``y (m, f)``."""
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    cube = k * k  # in place and without ``** 3``, which numpy evaluates by a slow general pow
    cube *= k
    return cube


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 (the U-statistic above) between ``x (m, f)`` and ``y (m', f)``, m, m' >= 2."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD needs at least 2 points in each set")
    k_xx, k_yy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


Rng = np.random.Generator | np.random.RandomState  # anything with numpy's choice(n, size, replace=False)


def kid_subsets(
    real: np.ndarray, generated: np.ndarray, *, rng: Rng, num_subsets: int, subset_size: int,
) -> np.ndarray:
    """Unbiased MMD^2 ``(num_subsets,)`` of random subsets of ``real (n, f)`` and ``generated (m, f)``.

    Each subset draws ``subset_size`` rows of each set without replacement; every subset's three
    kernel matrices are dense ``(subset_size, subset_size)`` products, so memory stays at about
    ``3 * subset_size^2`` floats whatever the set sizes.
    """
    real = np.asarray(real, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    values = np.empty(num_subsets)
    for s in range(num_subsets):
        x = real[rng.choice(len(real), subset_size, replace=False)]
        y = generated[rng.choice(len(generated), subset_size, replace=False)]
        values[s] = mmd2_unbiased(x, y)
    return values


@metric(
    "kid",
    kind="quality",
    values=("kid",),
    defaults={"num_points": 5000, "num_subsets": 100, "subset_size": 1000},
    points=lambda p: p["num_points"],
)
def compute_kid(
    real_features: np.ndarray,
    generated_features: np.ndarray,
    *,
    rng: Rng,
    extractor: str = "unnamed",
    num_points: int | None = None,
    num_subsets: int = 100,
    subset_size: int = 1000,
) -> dict:
    """KID between feature sets ``(n, f)`` and ``(m, f)``: mean and std over random subsets.

    Uses the first ``num_points`` rows of each set (all when None); ``subset_size`` is clipped to
    the smaller set. Records the extractor name and the sizes used.
    """
    real, generated = np.asarray(real_features), np.asarray(generated_features)
    if num_points is not None:
        real, generated = real[:num_points], generated[:num_points]
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"feature sets must be (n, f) and (m, f), got {real.shape} and {generated.shape}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be at least 1, got {num_subsets}")
    size = min(int(subset_size), len(real), len(generated))
    if size < 2:
        raise ValueError(f"KID needs subsets of at least 2 points, got {size}")
    values = kid_subsets(real, generated, rng=rng, num_subsets=num_subsets, subset_size=size)
    return {
        "kid": float(values.mean()),
        "kid_std": float(values.std()),
        "extractor": extractor,
        "num_real": int(len(real)),
        "num_generated": int(len(generated)),
        "num_subsets": int(num_subsets),
        "subset_size": size,
    }
