"""FactorVAE training step: the VAE and the TC discriminator each with their own Adam."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from disentune.models.base import Hyper
from disentune.models.factor_vae.losses import discriminator_loss, factor_vae_loss, permute_dims


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


class FactorVAEStep:
    def __init__(self, model: nn.Module, hyper: Hyper) -> None:
        self.model, self.hyper = model, hyper
        inner = _unwrap(model)
        self.vae_opt = torch.optim.Adam(inner.vae_parameters(), lr=hyper.lr, betas=(0.9, 0.999))
        # Kim & Mnih: discriminator lr 1e-4, betas (0.5, 0.9)
        self.disc_opt = torch.optim.Adam(inner.tc_discriminator.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        inner = _unwrap(self.model)
        logits, mu, logvar, z = self.model(x, generator)
        terms = factor_vae_loss(x, logits, mu, logvar, inner.tc_discriminator(z), self.hyper)
        self.vae_opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.vae_opt.step()

        codes = z.detach()
        d_loss = discriminator_loss(inner.tc_discriminator(codes),
                                    inner.tc_discriminator(permute_dims(codes, generator)))
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.disc_opt.step()
        return {**{k: float(v.detach()) for k, v in terms.items()}, "disc": float(d_loss.detach())}

    def state_dict(self) -> dict:
        return {"vae": self.vae_opt.state_dict(), "disc": self.disc_opt.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.vae_opt.load_state_dict(state["vae"])
        self.disc_opt.load_state_dict(state["disc"])
