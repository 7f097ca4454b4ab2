"""beta-VAE (Higgins et al. 2017): one weight on the whole KL.

    L = E_q[-log p(x|z)] + (1 + lambda_tc) * KL(q(z|x) || p(z))

so ``beta = 1 + lambda_tc`` (the whole KL holds the TC, which is what the weight is meant to
press on); ``lambda_mi`` does not enter this objective. Both weights at 0 give the plain ELBO.
"""

from functools import partial

import torch

from disentune.models.base import Hyper, Variant
from disentune.models.vae import ConvVAE, VAEStep, bernoulli_nll, gaussian_kl
from disentune.registry import MODELS


def beta_vae_loss(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  z: torch.Tensor, hyper: Hyper) -> dict[str, torch.Tensor]:
    recon, kl = bernoulli_nll(x, logits), gaussian_kl(mu, logvar)
    # L = recon + beta * KL, beta = 1 + lambda_tc
    return {"total": recon + (1.0 + hyper.lambda_tc) * kl, "recon": recon, "kl": kl}


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> ConvVAE:
    return ConvVAE(image_shape, hyper.latent_dim)


VARIANT = MODELS.register("beta_vae")(
    Variant(name="beta_vae", build=build, make_step=partial(VAEStep, loss=beta_vae_loss),
            weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
)
