"""AnnealedVAE loss (Burgess et al. 2018, "Understanding disentangling in beta-VAE", eq. 8).

The paper (and disentanglement_lib's ``AnnealedVAE``) minimises

    L_paper = E_q[-log p(x|z)] + gamma * | KL(q(z|x) || p(z)) - C |,
    C(t)    = min(c_max, c_max * t / anneal_steps)          t = optimisation steps taken so far

(disentanglement_lib: gamma = 1000, c_max = 25 nats, iteration_threshold = anneal_steps = 100,000;
Locatello et al. 2019 sweep c_max in {5, 10, 25, 50, 75, 100}). The platform keeps its rule that
zero weights give the base model, so the capacity term is added to the ELBO:

    L = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) + lambda_tc * | KL(q(z|x) || p(z)) - C(t) |

with ``gamma = lambda_tc``. ``lambda_tc = 0`` is the plain ELBO whatever C. For ``lambda_tc > 1``
the penalty's kink at KL = C holds the KL there as long as the reconstruction gains less than
``1 + lambda_tc`` nats per nat of KL (``gamma`` in the paper's form), so at the study's
gamma = 1000 the two objectives hold the KL at the same C; ``lambda_tc <= 1`` cannot pull the KL up to C (the ELBO's own KL
slope of 1 wins). ``lambda_mi`` does not enter. ``gamma = 1 + lambda_tc`` was rejected: with C > 0
its zero-weight objective ``recon + |KL - C|`` rewards KL below C and is not the ELBO.

Shapes: ``x, logits (n, C, R, R)``; ``mu, logvar, z (n, d)``; KL and C in nats per example.
"""

from __future__ import annotations

import torch

from disentune.models.base import Hyper
from disentune.models.vae import bernoulli_nll, gaussian_kl


def annealed_capacity(step: int, c_max: float, anneal_steps: int) -> float:
    """``C(t) = min(c_max, c_max * t / anneal_steps)``: 0 at the first step, c_max from
    ``anneal_steps`` on (disentanglement_lib's ``anneal`` on the global step)."""
    if anneal_steps < 1:
        raise ValueError(f"anneal_steps must be at least 1, got {anneal_steps}")
    return min(c_max, c_max * step / anneal_steps)


def annealed_vae_loss(
    x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
    z: torch.Tensor, hyper: Hyper, *, capacity: float,
) -> dict[str, torch.Tensor]:
    """Named terms at capacity ``C = capacity``; ``total`` is what the training step minimises,
    ``recon + kl`` the negative ELBO, ``kl_gap`` the unweighted ``|KL - C|``."""
    recon, kl = bernoulli_nll(x, logits), gaussian_kl(mu, logvar)
    # |KL(q(z|x) || p(z)) - C|
    kl_gap = (kl - capacity).abs()
    # L = recon + KL + gamma * |KL - C|,  gamma = lambda_tc
    total = recon + kl + hyper.lambda_tc * kl_gap
    return {"total": total, "recon": recon, "kl": kl, "kl_gap": kl_gap,
            "capacity": torch.tensor(capacity, dtype=kl.dtype, device=kl.device)}
