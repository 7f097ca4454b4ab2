"""beta-TCVAE loss (Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement").

The aggregate KL of the ELBO decomposes (their eq. 2) as

    E_p(x)[KL(q(z|x) || p(z))] = I_q(x; z)                      index-code mutual information
                               + KL(q(z) || prod_j q(z_j))        total correlation TC(z)
                               + sum_j KL(q(z_j) || p(z_j))       dimension-wise KL

and the loss minimised here is

    L = E_q[-log p(x|z)] + (1 - lambda_mi) * I_q(x; z) + (1 + lambda_tc) * TC(z) + DWKL.

Platform weights -> paper (alpha, beta, gamma): alpha = 1 - lambda_mi, beta = 1 + lambda_tc,
gamma = 1. Both weights at 0 give the plain ELBO; lambda_tc = beta - 1 of the paper ("more TC
penalty" as it grows), lambda_mi = 1 - alpha ("more information kept" as it grows, up to 1 where
the MI term is no longer penalised at all).

q(z) = (1/N) sum_n q(z | x_n) and each q(z_j) are estimated by minibatch-weighted sampling from a
batch of M codes drawn from a dataset of N images: the sample's own posterior stands for itself
(weight 1/N) and the other M - 1 stand for the other N - 1 images (weight (N-1) / (N (M-1))):

    q(z_i) ~= (1/N) q(z_i | x_i) + (N-1) / (N (M-1)) * sum_{m != i} q(z_i | x_m).

This is exact when the batch is the whole dataset. The 1/(N M) weight on every term in the
reference code of Chen et al. gives the same gradients but shifts the TC *value* by
(d - 1) log(N M) nats, so a factorised code would not read as TC ~= 0 in the reports.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def beta_tcvae_loss(
    x: torch.Tensor,
    logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    z: torch.Tensor,
    *,
    dataset_size: int,
    lambda_mi: float,
    lambda_tc: float,
) -> dict[str, torch.Tensor]:
    """Named terms of the beta-TCVAE loss; ``total`` is what the training step minimises.

    ``x, logits``: ``(M, C, R, R)``; ``mu, logvar, z``: ``(M, d)``. ``recon`` is the Bernoulli
    negative log-likelihood summed over pixels, ``kl`` the analytic KL(q(z|x) || N(0, I)) (both
    batch means), so ``recon + kl`` is the negative ELBO whatever the weights.
    """
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    terms = kl_decomposition(z, mu, logvar, dataset_size)
    # L = recon + (1 - lambda_mi) * I(x;z) + (1 + lambda_tc) * TC(z) + DWKL
    total = recon + (1.0 - lambda_mi) * terms["mi"] + (1.0 + lambda_tc) * terms["tc"] + terms["dwkl"]
    kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
    return {"total": total, "recon": recon, "kl": kl, **terms}
