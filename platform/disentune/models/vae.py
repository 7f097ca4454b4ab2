"""The convolutional VAE shared by the VAE families (beta-VAE, beta-TCVAE, FactorVAE), and their
common training step: Gaussian encoder q(z|x), Bernoulli decoder p(x|z), standard normal prior.

Shapes: ``x (n, C, R, R)`` in [0, 1]; ``mu, logvar, z (n, d)``; decoder logits ``(n, C, R, R)``.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from disentune.models.base import Hyper
from disentune.models.components import ConvDecoder, ConvEncoder


class ConvVAE(nn.Module):
    traversal_range = (-2.5, 2.5)

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        channels, resolution, _ = image_shape
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.representation_dim = latent_dim
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


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``E_q[-log p(x|z)]``: Bernoulli negative log-likelihood summed over pixels, batch mean."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic ``KL(q(z|x) || N(0, I))`` summed over dimensions, batch mean."""
    return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


VAELoss = Callable[..., dict[str, torch.Tensor]]


class VAEStep:
    """One Adam optimiser over the whole VAE; ``loss`` maps (x, logits, mu, logvar, z, hyper) to
    named terms with a ``total``. ``model`` may be wrapped (DDP); its forward is the VAE's."""

    def __init__(self, model: nn.Module, hyper: Hyper, loss: VAELoss) -> None:
        self.model, self.hyper, self.loss = model, hyper, loss
        self.optimizer = torch.optim.Adam(model.parameters(), lr=hyper.lr, betas=(0.9, 0.999))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        logits, mu, logvar, z = self.model(x, generator)
        terms = self.loss(x, logits, mu, logvar, z, self.hyper)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        return {name: float(value.detach()) for name, value in terms.items()}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
