"""FactorVAE (Kim & Mnih 2018): the shared conv VAE plus a discriminator on latent codes.

The discriminator ``D: (n, d) -> (n,)`` logits tells codes ``z ~ q(z)`` (label 1) from codes whose
dimensions were independently permuted across the batch, i.e. samples of ``prod_j q(z_j)``
(label 0). It is part of the module so checkpoints carry it.
"""

from __future__ import annotations

import torch
from torch import nn

from disentune.models.vae import ConvVAE


class TCDiscriminator(nn.Module):
    """MLP ``(n, d) -> (n,)`` logits of "z came from q(z)"."""

    def __init__(self, latent_dim: int, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


class FactorVAE(ConvVAE):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__(image_shape, latent_dim)
        self.tc_discriminator = TCDiscriminator(latent_dim)

    def vae_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.decoder.parameters()]
