"""The beta-TCVAE training step: one Adam optimiser over the whole VAE."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from disentune.models.base import Hyper
from disentune.models.beta_tcvae.losses import beta_tcvae_loss


class BetaTCVAEStep:
    """Owns the optimiser; ``model`` may be wrapped (DDP), its forward is the VAE's."""

    def __init__(self, model: nn.Module, hyper: Hyper) -> None:
        self.model = model
        self.hyper = hyper
        self.optimizer = torch.optim.Adam(model.parameters(), lr=hyper.lr, betas=(0.9, 0.999))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        logits, mu, logvar, z = self.model(x, generator)
        terms = beta_tcvae_loss(
            x, logits, mu, logvar, z,
            dataset_size=self.hyper.dataset_size,
            lambda_mi=self.hyper.lambda_mi,
            lambda_tc=self.hyper.lambda_tc,
        )
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        return {name: float(value.detach()) for name, value in terms.items()}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
