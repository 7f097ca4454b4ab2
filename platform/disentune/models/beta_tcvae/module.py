"""The convolutional VAE of beta-TCVAE (Chen et al. 2018): Gaussian encoder, Bernoulli decoder.

Shapes: ``x (n, C, R, R)`` in [0, 1]; ``mu, logvar, z (n, d)``; decoder logits ``(n, C, R, R)``.
"""

from __future__ import annotations

import torch
from torch import nn

from disentune.models.components import ConvDecoder, ConvEncoder


class ConvVAE(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        channels, resolution, _ = image_shape
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.encoder = ConvEncoder(channels, resolution, 2 * latent_dim)
        self.decoder = ConvDecoder(latent_dim, channels, resolution)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each ``(n, d)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(logits, mu, logvar, z)`` with ``z ~ q(z|x)`` by reparameterisation."""
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar, z

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The mean representation ``(n, d)`` used by the metrics and detectors."""
        return self.posterior(x)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(n, C, R, R)`` in [0, 1] (Bernoulli means) for codes ``(n, d)``."""
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images from the prior, ``(n, C, R, R)`` in [0, 1]."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z)
