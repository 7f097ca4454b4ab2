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

q(z) and each q(z_j) are estimated by minibatch-weighted sampling: see
:mod:`disentune.models.mws`.
"""

from __future__ import annotations

import torch

from disentune.models.base import Hyper
from disentune.models.mws import kl_decomposition
from disentune.models.vae import bernoulli_nll, gaussian_kl

def beta_tcvae_loss(
    x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
    z: torch.Tensor, hyper: Hyper,
) -> dict[str, torch.Tensor]:
    """Named terms of the beta-TCVAE loss; ``total`` is what the training step minimises.

    ``x, logits``: ``(M, C, R, R)``; ``mu, logvar, z``: ``(M, d)``. ``recon`` is the Bernoulli
    negative log-likelihood summed over pixels, ``kl`` the analytic KL(q(z|x) || N(0, I)) (both
    batch means), so ``recon + kl`` is the negative ELBO whatever the weights.
    """
    recon = bernoulli_nll(x, logits)
    terms = kl_decomposition(z, mu, logvar, hyper.dataset_size)
    # L = recon + (1 - lambda_mi) * I(x;z) + (1 + lambda_tc) * TC(z) + DWKL
    total = recon + (1.0 - hyper.lambda_mi) * terms["mi"] + (1.0 + hyper.lambda_tc) * terms["tc"] + terms["dwkl"]
    return {"total": total, "recon": recon, "kl": gaussian_kl(mu, logvar), **terms}
