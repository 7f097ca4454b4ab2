"""sigma-VAE (Rybkin, Daniilidis & Levine 2021): a Gaussian decoder with its optimal shared variance.

With decoder mean ``x_hat = sigmoid(logits)`` and one variance ``sigma^2`` for every pixel, the
Gaussian negative log-likelihood of an image of ``D`` values is

    -log p(x | z) = sum_i (x_i - x_hat_i)^2 / (2 sigma^2) + D log sigma + D/2 log(2 pi)

and its minimiser over ``sigma`` is the mean squared error, ``sigma*^2 = MSE`` (their eq. 5;
``log sigma`` soft-clipped at -6 as in their code, and not differentiated). The loss is

    L = -log p(x | z; sigma*) + (1 + lambda_tc) KL(q(z|x) || N(0, I)),

so both weights at 0 give the sigma-VAE's ELBO; ``lambda_mi`` does not enter.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from disentune.models.base import Hyper, Variant
from disentune.models.vae import ConvVAE, VAEStep, gaussian_kl

LOG_SIGMA_MIN = -6.0


def optimal_log_sigma(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """``log sqrt(MSE)`` of the batch, soft-clipped below at -6, without gradient."""
    log_sigma = 0.5 * torch.log(((x - x_hat) ** 2).mean().detach())
    return LOG_SIGMA_MIN + F.softplus(log_sigma - LOG_SIGMA_MIN)


def gaussian_nll(x: torch.Tensor, x_hat: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """``-log N(x; x_hat, sigma^2 I)`` summed over pixels, batch mean."""
    per_pixel = 0.5 * ((x - x_hat) * torch.exp(-log_sigma)) ** 2 + log_sigma + 0.5 * math.log(2 * math.pi)
    return per_pixel.flatten(1).sum(1).mean()


def sigma_vae_loss(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   z: torch.Tensor, hyper: Hyper) -> dict[str, torch.Tensor]:
    x_hat = torch.sigmoid(logits)
    log_sigma = optimal_log_sigma(x, x_hat)
    recon, kl = gaussian_nll(x, x_hat, log_sigma), gaussian_kl(mu, logvar)
    # L = -log p(x|z; sigma*) + (1 + lambda_tc) KL
    return {"total": recon + (1.0 + hyper.lambda_tc) * kl, "recon": recon, "kl": kl, "log_sigma": log_sigma}


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> ConvVAE:
    return ConvVAE(image_shape, hyper.latent_dim)


VARIANT = Variant(name="sigma_vae", build=build, make_step=partial(VAEStep, loss=sigma_vae_loss),
                  weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
