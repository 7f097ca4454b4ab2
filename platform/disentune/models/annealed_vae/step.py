"""AnnealedVAE training step: the shared VAE step (one Adam) plus the step counter t that drives
the capacity schedule C(t). The counter is part of ``state_dict``, so a resumed trial continues
the schedule exactly where its checkpoint left it."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from disentune.models.annealed_vae.losses import annealed_capacity, annealed_vae_loss
from disentune.models.base import Hyper
from disentune.models.vae import VAEStep


class AnnealedVAEStep(VAEStep):
    """``steps`` counts the optimisation steps taken; step ``t`` (from 0) trains at C(t)."""

    def __init__(self, model: nn.Module, hyper: Hyper) -> None:
        annealed_capacity(0, hyper.c_max, hyper.anneal_steps)  # a bad schedule fails here, not mid-trial
        super().__init__(model, hyper, loss=self._loss)
        self.steps = 0

    @property
    def capacity(self) -> float:
        """The capacity C(t) the next step trains at."""
        return annealed_capacity(self.steps, self.hyper.c_max, self.hyper.anneal_steps)

    def _loss(self, x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              z: torch.Tensor, hyper: Hyper) -> dict[str, torch.Tensor]:
        return annealed_vae_loss(x, logits, mu, logvar, z, hyper, capacity=self.capacity)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        terms = super().__call__(x, generator)
        self.steps += 1
        return terms

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, state: Mapping) -> None:
        super().load_state_dict(state)
        self.steps = int(state["steps"])
