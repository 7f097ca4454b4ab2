"""Active units (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders", sec. 5.2).

A latent dimension ``u`` is active when its posterior mean varies over the data:
``A_u = Cov_x(E_{q(z|x)}[z_u]) > threshold`` (0.01 in the paper). The metric counts them, and
reports the fraction of the representation's dimensions they are.
"""

from __future__ import annotations

import numpy as np

from disentune.metrics.base import Metric


def count_active(representation: np.ndarray, threshold: float = 0.01) -> int:
    """Dimensions of ``representation (n, d)`` whose variance over the rows exceeds ``threshold``."""
    return int((np.var(np.asarray(representation, dtype=np.float64), axis=0) > threshold).sum())


def compute_active_units(representation: np.ndarray, factors: np.ndarray, *, rng: np.random.Generator,
                         num_points: int = 10_000, threshold: float = 0.01) -> dict:
    """``active_units`` and ``active_fraction`` of the mean representation ``(n, d)`` (factors unused)."""
    active = count_active(representation, threshold)
    return {"active_units": float(active), "active_fraction": active / representation.shape[1],
            "num_points": int(len(representation)), "threshold": threshold}


METRIC = Metric(name="active_units", kind="representation", compute=compute_active_units,
                values=("active_units", "active_fraction"), defaults={"num_points": 10_000, "threshold": 0.01},
                points=lambda p: p["num_points"])
