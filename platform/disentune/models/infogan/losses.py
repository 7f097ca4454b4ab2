"""InfoGAN losses (Chen et al. 2016), with the optional TC penalty of InfoGAN-TC.

Discriminator (non-saturating GAN):   L_D = -E[log D(x)] - E[log(1 - D(G(z, c)))]
Variational MI lower bound (their eq. 4), per code, with Q's posterior on generated images:

    L_I = E_{c, x ~ G(z, c)}[ log Q(c | x) ] + H(c)  <=  I(c; G(z, c))

categorical code: log Q is minus the cross-entropy, H(c) = log(n_cat), so L_I <= H(c), with
equality when Q recovers c exactly; continuous codes (uniform on [-1, 1], H = log 2 each): log Q
is a Gaussian log-density with Q's mean and log-variance (the module fixes the variance at 1, so
per code L_I = log 2 - log(2 pi) / 2 - (c - mu)^2 / 2, a bounded squared error).

Discriminator and Q (Q shares D's body):   L_DQ = L_D - lambda_mi * L_I
Generator:   L_G = -E[log D(G(z, c))] - lambda_mi * L_I + lambda_tc * TC(Q's posterior)

where TC(Q's posterior) is the minibatch-weighted-sampling estimate of the total correlation of
Q's Gaussian posterior over the continuous codes of the generated batch (InfoGAN-TC; 0 when
lambda_tc is 0). Both weights at 0 give the plain GAN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from disentune.models.mws import gaussian_log_density, kl_decomposition


def info_lower_bound(q_cat: torch.Tensor, q_mu: torch.Tensor, q_logvar: torch.Tensor,
                     cat: torch.Tensor, cont: torch.Tensor) -> dict[str, torch.Tensor]:
    """``mi_cat``, ``mi_cont`` and their sum ``mi``: the batch estimate of L_I in nats."""
    n_cat = q_cat.shape[1]
    mi_cat = -F.cross_entropy(q_cat, cat) + math.log(n_cat)
    mi_cont = (gaussian_log_density(cont, q_mu, q_logvar).sum(dim=1).mean()
               + cont.shape[1] * math.log(2.0))
    return {"mi_cat": mi_cat, "mi_cont": mi_cont, "mi": mi_cat + mi_cont}


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: ``-E[log D(G(z, c))]``."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def q_posterior_tc(q_mu: torch.Tensor, q_logvar: torch.Tensor, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """MWS estimate of TC of Q's posterior over continuous codes, the batch as the dataset."""
    eps = torch.randn(q_mu.shape, generator=generator, device=q_mu.device, dtype=q_mu.dtype)
    z = q_mu + eps * torch.exp(0.5 * q_logvar)
    return kl_decomposition(z, q_mu, q_logvar, dataset_size=q_mu.shape[0])["tc"]


def generator_loss(fake_logits: torch.Tensor, info: dict[str, torch.Tensor], tc: torch.Tensor,
                   *, lambda_mi: float, lambda_tc: float) -> dict[str, torch.Tensor]:
    adversarial = generator_adversarial_loss(fake_logits)
    # L_G = -log D(G(z,c)) - lambda_mi * L_I + lambda_tc * TC
    total = adversarial - lambda_mi * info["mi"] + lambda_tc * tc
    return {"gen_total": total, "gen": adversarial, "mi_loss": -info["mi"], "tc": tc, **info}
