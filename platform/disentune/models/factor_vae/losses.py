"""FactorVAE losses (Kim & Mnih 2018, eqs. 2-3).

VAE objective, with the density-ratio estimate of the total correlation:

    TC(z) = KL(q(z) || prod_j q(z_j)) ~= E_q(z)[ log D(z) / (1 - D(z)) ] = E_q(z)[ logit D(z) ]
    L_VAE = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) + lambda_tc * TC(z)

(``lambda_tc`` is the paper's gamma; 0 gives the plain ELBO; ``lambda_mi`` does not enter.)

Discriminator objective: binary cross-entropy of D on codes of q(z) (label 1) against
dimension-wise permuted codes, samples of prod_j q(z_j) (label 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from disentune.models.base import Hyper
from disentune.models.vae import bernoulli_nll, gaussian_kl


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each dimension independently across the batch: ``(n, d)`` samples of prod_j q(z_j)."""
    n, d = z.shape
    idx = torch.stack([torch.randperm(n, generator=generator, device=z.device) for _ in range(d)], dim=1)
    return torch.gather(z, 0, idx)


def tc_estimate(joint_logits: torch.Tensor) -> torch.Tensor:
    """Density-ratio TC estimate: mean logit of D on codes of q(z)."""
    return joint_logits.mean()


def factor_vae_loss(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                    joint_logits: torch.Tensor, hyper: Hyper) -> dict[str, torch.Tensor]:
    recon, kl, tc = bernoulli_nll(x, logits), gaussian_kl(mu, logvar), tc_estimate(joint_logits)
    # L_VAE = recon + KL + lambda_tc * TC
    return {"total": recon + kl + hyper.lambda_tc * tc, "recon": recon, "kl": kl, "tc": tc}


def discriminator_loss(joint_logits: torch.Tensor, permuted_logits: torch.Tensor) -> torch.Tensor:
    """BCE: codes of q(z) are 1, permuted codes are 0."""
    return 0.5 * (
        F.binary_cross_entropy_with_logits(joint_logits, torch.ones_like(joint_logits))
        + F.binary_cross_entropy_with_logits(permuted_logits, torch.zeros_like(permuted_logits))
    )
