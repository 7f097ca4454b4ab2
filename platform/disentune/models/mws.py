"""Minibatch-weighted-sampling estimates of the aggregate-posterior KL terms (Chen et al. 2018).

q(z) = (1/N) sum_n q(z | x_n) and each q(z_j) are estimated by minibatch-weighted sampling from a
batch of M codes drawn from a dataset of N images: the sample's own posterior stands for itself
(weight 1/N) and the other M - 1 stand for the other N - 1 images (weight (N-1) / (N (M-1))):

    q(z_i) ~= (1/N) q(z_i | x_i) + (N-1) / (N (M-1)) * sum_{m != i} q(z_i | x_m).

This is exact when the batch is the whole dataset. The 1/(N M) weight on every term in the
reference code of Chen et al. gives the same gradients but shifts the TC *value* by
(d - 1) log(N M) nats, so a factorised code would not read as TC ~= 0 in the reports.

Used by beta-TCVAE on the encoder's posterior and by InfoGAN-TC / info-StyleGAN on Q's posterior
over the continuous codes.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)); broadcasts."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar))


def importance_log_weights(m: int, n: int, device=None, dtype=None) -> torch.Tensor:
    """``(M, M)`` log-weights: 1/N on the diagonal, (N-1)/(N(M-1)) elsewhere (1/M if M == 1)."""
    n = max(n, m)
    off = math.log((n - 1) / (n * (m - 1))) if m > 1 else -math.inf
    log_w = torch.full((m, m), off, device=device, dtype=dtype)
    log_w.fill_diagonal_(-math.log(n))
    return log_w


def kl_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> dict[str, torch.Tensor]:
    """Minibatch-weighted-sampling estimates of I(x;z), TC(z) and the dimension-wise KL.

    ``z, mu, logvar``: ``(M, d)``, with ``z[i] ~ q(z | x_i)``. Returns scalar tensors ``mi``,
    ``tc`` and ``dwkl`` (batch means, in nats); they sum to the batch estimate of the aggregate KL.
    """
    m = z.shape[0]
    log_qz_given_x = gaussian_log_density(z, mu, logvar).sum(dim=1)  # (M,)
    # pairwise[i, m, j] = log q(z_ij | x_m)
    pairwise = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_w = importance_log_weights(m, dataset_size, z.device, z.dtype)  # (M, M)
    log_qz = torch.logsumexp(pairwise.sum(dim=2) + log_w, dim=1)  # (M,)
    log_prod_qzj = torch.logsumexp(pairwise + log_w[:, :, None], dim=1).sum(dim=1)  # (M,)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    return {
        "mi": (log_qz_given_x - log_qz).mean(),
        "tc": (log_qz - log_prod_qzj).mean(),
        "dwkl": (log_prod_qzj - log_pz).mean(),
    }


