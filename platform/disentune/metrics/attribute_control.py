"""Attribute control of a generator: does sweeping one code move exactly one factor, strongly?

Paul et al. (Neural Computation 2021) argue that attribute control (each code steering one
semantic attribute) is what mutual-information maximisation buys. This metric measures it by
intervention, with no encoder: only ``decode`` and a network that reads factors from images.

**Control matrix.** For a generator with ``c`` codes, code ``j`` ranging over
``code_ranges[j] = [lo_j, hi_j]``, and ``K`` ground-truth factors read from an image ``x`` by
``v(x) in [0, 1]^K`` (each factor's expected value under the dataset-factor network, normalised to
``[0, 1]``, see :func:`factor_predictor`):

1. draw ``B = num_bases`` base codes ``b`` uniformly on the code ranges (the prior on a box),
2. for each code ``j`` and base ``b``, sweep code ``j`` over ``T = num_steps`` evenly spaced values
   ``t`` from ``lo_j`` to ``hi_j`` holding the other codes at ``b``, and decode,
3. ``M[j, k] = 1/B sum_b std_t v_k(decode(b with c_j = t))``  (population std over the sweep).

``M`` is ``(c, K)``, non-negative, and at most 0.5 (the largest std of values in [0, 1]).

**Score.** An entry counts when it stands out in both its column (no other code moves factor
``k`` as much) and its row (code ``j`` moves no other factor as much), and in proportion to its
strength against a full-range sweep:

    g[j, k] = max(0, M[j, k] - max(max_{j' != j} M[j', k], max_{k' != k} M[j, k'])) / M[j, k]
    s[j, k] = min(1, M[j, k] / sigma_T),   sigma_T = sqrt((T + 1) / (12 (T - 1)))
    attribute_control = 1/K sum_k max_j s[j, k] g[j, k]

``g`` is the relative margin of ``M[j, k]`` over every other entry of its row and column (0 where
``M[j, k] = 0``); ``sigma_T`` is the std of ``T`` evenly spaced points on ``[0, 1]``, the effect of
a code that sweeps its factor linearly across the factor's whole range. The score is in
``[0, 1]``: 1 when every factor has its own code that sweeps it fully and moves nothing else
(``M = sigma_T I``), 0 when codes are ignored (``M = 0``), when every code moves every factor
equally, or when one code moves every factor equally. Like MIG it rewards a factor's best code
only by its gap, now over both codes and factors, and on interventions rather than on the
encoder's information; it is invariant to permuting codes (and factors), and extra codes that
move nothing cost nothing. ``decode`` must be a deterministic function of the codes (the
evaluator holds the generator's noise fixed), or the sweep's std also measures the noise.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from disentune.metrics.base import metric
from disentune.metrics.factor_net import FactorNet


def sweep_std(num_steps: int) -> float:
    """``sigma_T``: population std of ``T = num_steps`` evenly spaced points on [0, 1]."""
    if num_steps < 2:
        raise ValueError(f"a sweep needs at least 2 steps, got {num_steps}")
    return float(np.sqrt((num_steps + 1.0) / (12.0 * (num_steps - 1.0))))


def sweep_codes(bases: np.ndarray, code_ranges: np.ndarray, j: int, num_steps: int) -> np.ndarray:
    """Codes ``(B * T, c)``: each base ``(B, c)`` with code ``j`` swept over its range, base-major."""
    values = np.linspace(code_ranges[j, 0], code_ranges[j, 1], num_steps)
    codes = np.repeat(bases, num_steps, axis=0)
    codes[:, j] = np.tile(values, len(bases))
    return codes


def control_matrix(predictions: np.ndarray) -> np.ndarray:
    """``M (c, K)`` from swept factor predictions ``(c, B, T, K)``: std over T, mean over B."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim != 4:
        raise ValueError(f"predictions must be (codes, bases, steps, factors), got {predictions.shape}")
    return predictions.std(axis=2).mean(axis=1)


def _rival(m: np.ndarray, axis: int) -> np.ndarray:
    """Largest *other* entry along ``axis`` for every entry (0 when there is no other)."""
    if m.shape[axis] < 2:
        return np.zeros_like(m)
    ordered = np.sort(m, axis=axis)
    first = np.expand_dims(ordered.take(-1, axis=axis), axis)
    second = np.expand_dims(ordered.take(-2, axis=axis), axis)
    return np.where(m >= first, second, first)  # a tie at the top leaves a zero margin


def control_gaps(matrix: np.ndarray) -> np.ndarray:
    """``g (c, K)``: each entry's relative margin over the rest of its row and column."""
    m = np.asarray(matrix, dtype=np.float64)
    margin = np.clip(m - np.maximum(_rival(m, 0), _rival(m, 1)), 0.0, None)
    return np.divide(margin, m, out=np.zeros_like(m), where=m > 0)


def control_score(matrix: np.ndarray, reference: float) -> tuple[float, np.ndarray]:
    """Attribute control in [0, 1] and per-factor scores ``(K,)`` of ``M (c, K)``.

    ``reference`` is the full-range sweep std ``sigma_T`` at which an effect counts fully.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1 or (m < 0).any():
        raise ValueError(f"the control matrix must be a non-negative (codes, factors) array, got {m.shape}")
    strength = np.minimum(1.0, m / reference)
    per_factor = (strength * control_gaps(m)).max(axis=0)
    return float(per_factor.mean()), per_factor


def factor_predictor(
    extractor_net: FactorNet, factor_values: Sequence[Sequence[float]] | None = None,
    batch_size: int = 500,
) -> Callable[[np.ndarray], np.ndarray]:
    """``images (n, C, H, W) -> (n, K)``: each factor's expected normalised value under the net.

    Factor ``k``'s head gives class probabilities ``p_k (size_k,)``; its value grid ``values_k``
    (e.g. ``[f.values for f in data.factors]``) is min-max normalised to ``u_k`` in [0, 1] and the
    prediction is ``sum_i p_k[i] u_k[i]``. For an evenly spaced increasing grid (and when
    ``factor_values`` is None) ``u_k[i] = i / (size_k - 1)``, the class position; a factor with a
    single value reads 0.
    """
    sizes = list(extractor_net.factor_sizes)
    grids = factor_values if factor_values is not None else [np.arange(s) for s in sizes]
    if len(grids) != len(sizes):
        raise ValueError(f"{len(grids)} value grids for a net with {len(sizes)} factors")
    positions = []
    for k, (grid, size) in enumerate(zip(grids, sizes)):
        grid = np.asarray(grid, dtype=np.float64)
        if grid.shape != (size,):
            raise ValueError(f"factor {k}: {grid.shape[0]} values for a head of {size} classes")
        span = grid.max() - grid.min()
        positions.append(torch.as_tensor((grid - grid.min()) / span if span > 0 else np.zeros(size)))

    @torch.no_grad()
    def predict(images: np.ndarray) -> np.ndarray:
        extractor_net.eval()
        device = next(extractor_net.parameters()).device
        images = torch.as_tensor(images)
        out = []
        for i in range(0, len(images), batch_size):
            logits = extractor_net(images[i : i + batch_size].to(device).float())
            out.append(torch.stack(
                [lg.double().softmax(dim=1).cpu() @ u for lg, u in zip(logits, positions)], dim=1
            ))
        return torch.cat(out).numpy() if out else np.empty((0, len(sizes)))

    return predict


@metric(
    "attribute_control",
    kind="control",
    values=("attribute_control",),
    defaults={"num_bases": 64, "num_steps": 10},
)
def compute_attribute_control(
    decode: Callable[[np.ndarray], np.ndarray],
    code_ranges: np.ndarray,
    predict_factors: Callable[[np.ndarray], np.ndarray],
    *,
    rng: np.random.Generator,
    num_bases: int = 64,
    num_steps: int = 10,
) -> dict:
    """Attribute control of ``decode (n, c) -> images`` with codes in ``code_ranges (c, 2)``.

    ``predict_factors(images) -> (n, K)`` reads factor values in [0, 1]. Decodes once per code, all
    ``num_bases * num_steps`` sweeps of that code in one batch. Returns the score, the per-factor
    scores and the matrix ``M`` (nested lists, codes by factors).
    """
    ranges = np.asarray(code_ranges, dtype=np.float64)
    if ranges.ndim != 2 or ranges.shape[1] != 2 or len(ranges) < 1:
        raise ValueError(f"code_ranges must be (codes, 2), got {ranges.shape}")
    if num_bases < 1:
        raise ValueError(f"num_bases must be at least 1, got {num_bases}")
    reference = sweep_std(num_steps)
    bases = rng.uniform(ranges[:, 0], ranges[:, 1], size=(num_bases, len(ranges)))
    swept = []
    for j in range(len(ranges)):
        codes = sweep_codes(bases, ranges, j, num_steps).astype(np.float32)
        values = np.asarray(predict_factors(decode(codes)), dtype=np.float64)
        swept.append(values.reshape(num_bases, num_steps, -1))
    matrix = control_matrix(np.stack(swept))
    score, per_factor = control_score(matrix, reference)
    return {
        "attribute_control": score,
        "attribute_control_per_factor": per_factor.tolist(),
        "control_matrix": matrix.tolist(),
        "num_bases": int(num_bases),
        "num_steps": int(num_steps),
        "num_codes": int(len(ranges)),
    }
