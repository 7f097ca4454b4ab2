"""DIP-VAE losses (Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of Disentangled
Latent Concepts from Unlabeled Observations", eqs. 6-7; disentanglement_lib's ``DIPVAE``).

Both variants push a covariance of the aggregate posterior towards the identity:

    L = E_q[-log p(x|z)] + KL(q(z|x) || p(z))
        + lambda_od * sum_{i != j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2

    DIP-VAE-I  (eq. 6):  Cov = Cov_p(x)[mu(x)]                                  of the posterior means
    DIP-VAE-II (eq. 7):  Cov = Cov_p(x)[mu(x)] + E_p(x)[diag(exp(logvar(x)))]  of q(z) itself

with the expectations over the minibatch and the biased covariance ``E[mu mu^T] - E[mu] E[mu]^T``,
as disentanglement_lib computes them. Platform weights: ``lambda_od = lambda_tc`` and
``lambda_d = lambda_d_factor * lambda_od`` with the study's factor (10 for DIP-I, 1 for DIP-II);
``lambda_mi`` does not enter. ``lambda_tc = 0`` is the plain ELBO.

Shapes: ``x, logits (n, C, R, R)``; ``mu, logvar, z (n, d)``; covariances ``(d, d)``.
"""

from __future__ import annotations

from typing import Literal

import torch

from disentune.models.base import Hyper
from disentune.models.vae import bernoulli_nll, gaussian_kl

DipType = Literal["i", "ii"]


def covariance_of_means(mu: torch.Tensor) -> torch.Tensor:
    """``Cov_p(x)[mu(x)] = E[mu mu^T] - E[mu] E[mu]^T`` over the batch, ``(n, d) -> (d, d)``,
    in float32 (bf16 autocast would round the small differences away)."""
    mu = mu.float()
    mean = mu.mean(dim=0)
    return (mu[:, :, None] * mu[:, None, :]).mean(dim=0) - mean[:, None] * mean[None, :]


def posterior_covariance(mu: torch.Tensor, logvar: torch.Tensor, dip_type: DipType) -> torch.Tensor:
    """The covariance DIP-VAE regularises, ``(d, d)``: eq. 6 (``"i"``) or eq. 7 (``"ii"``)."""
    cov_mu = covariance_of_means(mu)
    if dip_type == "i":
        return cov_mu
    if dip_type == "ii":
        # Cov_q(z)[z] = E_p(x)[Cov_q(z|x)[z]] + Cov_p(x)[mu(x)],  Cov_q(z|x) = diag(exp(logvar))
        return torch.diag(logvar.float().exp().mean(dim=0)) + cov_mu
    raise ValueError(f"unknown DIP-VAE type {dip_type!r}; choose 'i' or 'ii'")


def dip_penalties(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_{i != j} Cov_ij^2, sum_i (Cov_ii - 1)^2)``, each unweighted."""
    diagonal = torch.diagonal(cov)
    off_diagonal = cov - torch.diag(diagonal)
    return off_diagonal.pow(2).sum(), (diagonal - 1.0).pow(2).sum()


def dip_vae_loss(
    x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
    z: torch.Tensor, hyper: Hyper, *, dip_type: DipType, lambda_d_factor: float,
) -> dict[str, torch.Tensor]:
    """Named terms; ``total`` is what the training step minimises, ``recon + kl`` the negative
    ELBO, ``cov_off_diagonal`` and ``cov_diagonal`` the unweighted penalties."""
    recon, kl = bernoulli_nll(x, logits), gaussian_kl(mu, logvar)
    off_diagonal, diagonal = dip_penalties(posterior_covariance(mu, logvar, dip_type))
    lambda_od = hyper.lambda_tc
    lambda_d = lambda_d_factor * lambda_od
    # L = recon + KL + lambda_od * sum_{i != j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2
    total = recon + kl + lambda_od * off_diagonal + lambda_d * diagonal
    return {"total": total, "recon": recon, "kl": kl,
            "cov_off_diagonal": off_diagonal, "cov_diagonal": diagonal}
