"""Unsupervised Disentanglement Ranking, UDR (Duan et al. 2020, "Unsupervised Model Selection for
Variational Disentangled Representation Learning", Sec. 3), as disentanglement_lib's
``compute_udr_sklearn`` computes it (``disentanglement_lib/evaluation/udr/metrics/udr.py``).

UDR compares MODELS, not a model with factors: a model is disentangled if other models trained the
same way (other seeds, other weights) find the same latents up to permutation, sign and scale.
With the posterior means ``r_m (n, d_m)`` of the same ``n`` inputs for every model ``m``
(1,000 in the reference, ``num_data_points``):

1. each ``r_m`` is standardised per column (``StandardScaler``: mean 0, population std 1, a
   constant column stays 0) and its latents with average KL to the prior ``kl_m <= 0.01`` are set
   to 0 (udr.py lines 221-226; the 0.01 is fixed there, whatever ``kl_filter_threshold`` says);
2. for every ordered pair ``(i, j)``, ``i != j``, a similarity matrix ``R (d_i, d_j)`` between
   latents: ``|coef|`` of ``Lasso(alpha=0.1)`` regressing ``r_j`` on ``r_i`` (lines 74-92), or the
   absolute Spearman correlations ``|rho(r_i[:, a], r_j[:, b])|`` (lines 49-71);
3. with ``filter_low_kl`` the rows and columns of latents with ``kl <= kl_filter_threshold``
   (0.01) are dropped (lines 243-244), then the pair score is the relative strength (lines 36-46)::

       S(R) = (mean_b nan0(max_a R_ab^2 / sum_a R_ab) + mean_a nan0(max_b R_ab^2 / sum_b R_ab)) / 2

   where ``nan0`` turns NaN (an all-zero row or column, or a Spearman NaN from a constant latent)
   into 0 (``np.nan_to_num``);
4. model ``m``'s UDR is the median over ``j != m`` of ``S[j, m]``, the pairs where ``m`` is the
   regression target (line 254).

The maximum is 1 with Spearman. With Lasso it is ``1 - alpha = 0.9``: on standardised columns
(``x'x / n = 1``) the Lasso estimate of ``y = x`` is the soft-thresholded ``x'y / n - alpha = 0.9``,
so copies of one model give ``R = 0.9 P`` for a permutation ``P`` and ``S = 0.9^2 / 0.9 = 0.9``.

Two generalisations, which leave the reference's values unchanged where it has them: models may
have different latent sizes ``d_m`` (the reference asserts equal shapes), and a pair in which one
model keeps no active latent scores 0 (the reference raises on the empty matrix).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import sklearn
from scipy.stats import rankdata
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler

from disentune.metrics.base import metric

Correlation = Literal["lasso", "spearman"]
CORRELATIONS: tuple[Correlation, ...] = ("lasso", "spearman")
LASSO_ALPHA = 0.1  # udr.py line 90
KL_ZEROING_THRESHOLD = 0.01  # udr.py line 225: fixed, independent of kl_filter_threshold


def relative_strength_disentanglement(corr: np.ndarray) -> float:
    """The pair score ``S`` of a non-negative similarity matrix ``(a, b)`` (udr.py lines 36-46).

    >>> relative_strength_disentanglement(np.eye(3))
    1.0
    >>> relative_strength_disentanglement(np.ones((3, 3)))  # (1/3 + 1/3) / 2
    0.3333333333333333
    >>> relative_strength_disentanglement(np.zeros((2, 2)))
    0.0
    """
    corr = np.asarray(corr, dtype=np.float64)
    if corr.size == 0:
        return 0.0  # no active latent on one side (the reference raises here)
    with np.errstate(divide="ignore", invalid="ignore"):
        score_x = np.nanmean(np.nan_to_num(corr.max(axis=0) ** 2 / corr.sum(axis=0)))
        score_y = np.nanmean(np.nan_to_num(corr.max(axis=1) ** 2 / corr.sum(axis=1)))
    return float((score_x + score_y) / 2)


def gaussian_kl_per_latent(means: np.ndarray, logvars: np.ndarray) -> np.ndarray:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` per latent averaged over the data: ``(n, d) -> (d,)``.

    As disentanglement_lib's ``compute_gaussian_kl`` (``evaluation/udr/evaluate.py`` lines 84-87).
    """
    means, logvars = np.asarray(means, dtype=np.float64), np.asarray(logvars, dtype=np.float64)
    if means.shape != logvars.shape:
        raise ValueError(f"posterior means {means.shape} and log-variances {logvars.shape} differ")
    return np.mean(0.5 * (means**2 + np.exp(logvars) - logvars - 1.0), axis=0)


def lasso_correlation_matrix(x: np.ndarray, y: np.ndarray, alpha: float = LASSO_ALPHA) -> np.ndarray:
    """``|coef|`` of ``Lasso(alpha)`` regressing ``y (n, b)`` on ``x (n, a)``, as ``(a, b)``."""
    return np.abs(Lasso(alpha=alpha).fit(x, y).coef_.reshape(y.shape[1], x.shape[1])).T


def spearman_correlation_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|Spearman rho|`` of every column pair of ``x (n, a)`` and ``y (n, b)``, as ``(a, b)``.

    Pearson correlation of average ranks, which is ``scipy.stats.spearmanr`` per pair; NaN where a
    column is constant, as spearmanr.
    """
    rx = rankdata(x, axis=0)
    ry = rankdata(y, axis=0)
    rx, ry = rx - rx.mean(axis=0), ry - ry.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (rx.T @ ry) / np.outer(np.sqrt((rx * rx).sum(axis=0)), np.sqrt((ry * ry).sum(axis=0)))
    return np.abs(np.clip(rho, -1.0, 1.0))


def _prepare(representations: Sequence[np.ndarray], kl: Sequence[np.ndarray] | None
             ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    reps = [np.asarray(r, dtype=np.float64) for r in representations]
    if len(reps) < 2:
        raise ValueError(f"UDR compares models: it needs at least 2, got {len(reps)}")
    n = reps[0].shape[0] if reps[0].ndim == 2 else -1
    for m, r in enumerate(reps):
        if r.ndim != 2 or r.shape[0] != n or r.shape[1] < 1:
            raise ValueError(f"UDR needs (n, d) representations of the same n inputs; model {m} has "
                             f"shape {r.shape}, model 0 {reps[0].shape}")
        if not np.isfinite(r).all():
            raise ValueError(f"UDR: model {m}'s representation is not finite")
    kls: list[np.ndarray | None] = [None] * len(reps) if kl is None else [
        None if k is None else np.asarray(k, dtype=np.float64) for k in kl]
    if len(kls) != len(reps):
        raise ValueError(f"UDR: {len(kls)} KL vectors for {len(reps)} models")
    for m, (r, k) in enumerate(zip(reps, kls)):
        if k is not None and k.shape != (r.shape[1],):
            raise ValueError(f"UDR: model {m}'s KL has shape {k.shape}, its latents are {r.shape[1]}")
    return reps, kls


def udr(
    representations: Sequence[np.ndarray],
    kl: Sequence[np.ndarray | None] | None = None,
    *,
    correlation: Correlation = "lasso",
    filter_low_kl: bool = True,
    kl_filter_threshold: float = 0.01,
) -> dict:
    """UDR of ``M >= 2`` models from their representations of the same inputs.

    ``representations``: ``M`` arrays ``(n, d_m)``, the posterior means of the same ``n`` inputs.
    ``kl``: per model ``(d_m,)`` the average KL of each latent to the prior (see
    :func:`gaussian_kl_per_latent`), or None (for all models, or per model) for a model without a
    Gaussian posterior, whose latents then all count as active.

    Returns ``model_scores (M,)``, ``pairwise (M, M)`` (``[i, j]`` is ``S`` of the regression of
    model ``j`` on model ``i``; the diagonal is 0 as in the reference), ``correlations`` (``[i][j]``
    the raw ``(d_i, d_j)`` matrix before the KL filter, None on the diagonal) and ``active`` (per
    model the boolean ``(d_m,)`` mask of latents the filter keeps).
    """
    if correlation not in CORRELATIONS:
        raise ValueError(f"UDR correlation must be one of {', '.join(CORRELATIONS)}, got {correlation!r}")
    reps, kls = _prepare(representations, kl)
    num = len(reps)
    prepared, active = [], []
    for r, k in zip(reps, kls):
        z = StandardScaler().fit_transform(r)
        if k is None:
            prepared.append(z)
            active.append(np.ones(r.shape[1], dtype=bool))
        else:
            prepared.append(z * (k > KL_ZEROING_THRESHOLD))
            active.append(k > kl_filter_threshold)
    pairwise = np.zeros((num, num))
    correlations: list[list[np.ndarray | None]] = [[None] * num for _ in range(num)]
    for i in range(num):
        for j in range(num):
            if i == j:
                continue
            corr = (lasso_correlation_matrix(prepared[i], prepared[j]) if correlation == "lasso"
                    else spearman_correlation_matrix(prepared[i], prepared[j]))
            correlations[i][j] = corr
            if filter_low_kl:
                corr = corr[active[i]][:, active[j]]
            pairwise[i, j] = relative_strength_disentanglement(corr)
    scores = np.array([np.median(np.delete(pairwise[:, m], m)) for m in range(num)])
    return {"model_scores": scores, "pairwise": pairwise, "correlations": correlations, "active": active}


@metric(
    "udr",
    kind="cross_model",
    values=("udr",),
    defaults={"num_data_points": 1000, "correlation_matrix": "lasso", "filter_low_kl": True,
              "kl_filter_threshold": 0.01, "include_raw_correlations": True},
    points=lambda p: p["num_data_points"],
)
def compute_udr(
    models_means: Sequence[np.ndarray],
    models_logvars: Sequence[np.ndarray | None] | None,
    *,
    rng: np.random.Generator | None = None,
    num_data_points: int | None = None,
    correlation_matrix: Correlation = "lasso",
    filter_low_kl: bool = True,
    kl_filter_threshold: float = 0.01,
    include_raw_correlations: bool = True,
) -> dict:
    """UDR of several models: ``udr`` holds one score per model, in the order given.

    ``models_means``: per model ``(n, d_m)`` posterior means of the SAME ``n`` images (row ``t`` of
    every array is the same image). ``models_logvars``: the matching ``(n, d_m)`` posterior
    log-variances, from which each latent's KL is averaged over the rows; None (or a None entry)
    where a model has no Gaussian posterior, which disables the KL filter for it. Uses the first
    ``num_data_points`` rows (all when None). Deterministic given its inputs (``rng`` is accepted
    for the common signature: Lasso's cyclic coordinate descent draws nothing).
    """
    means = [np.asarray(m)[:num_data_points] for m in models_means]
    kl = None
    if models_logvars is not None:
        if len(models_logvars) != len(means):
            raise ValueError(f"UDR: {len(models_logvars)} log-variance arrays for {len(means)} models")
        kl = [None if lv is None else gaussian_kl_per_latent(m, np.asarray(lv)[:num_data_points])
              for m, lv in zip(means, models_logvars)]
    result = udr(means, kl, correlation=correlation_matrix, filter_low_kl=filter_low_kl,
                 kl_filter_threshold=kl_filter_threshold)
    out = {
        "udr": result["model_scores"].tolist(),
        "udr_pairwise": result["pairwise"].tolist(),
        "active_latents": [a.tolist() for a in result["active"]],
        "kl_per_latent": [None if k is None else k.tolist() for k in (kl or [None] * len(means))],
        "num_models": len(means),
        "num_data_points": int(means[0].shape[0]),
        "correlation_matrix": correlation_matrix,
        "filter_low_kl": bool(filter_low_kl),
        "kl_filter_threshold": float(kl_filter_threshold),
        "lasso_alpha": LASSO_ALPHA,
        "sklearn_version": sklearn.__version__,
    }
    if include_raw_correlations:
        out["raw_correlations"] = [[None if c is None else c.tolist() for c in row]
                                   for row in result["correlations"]]
    return out
