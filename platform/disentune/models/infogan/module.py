"""InfoGAN (Chen et al. 2016): generator G(z, c), discriminator D with a Q head recovering c.

Codes ``c``: one categorical code with ``n_cat`` values (3, like dSprites' shapes) and
``latent_dim`` continuous codes uniform on [-1, 1]; ``z`` is ``noise_dim`` incompressible noise.
Shapes: images ``(n, C, R, R)`` in [0, 1]; codes ``(n, latent_dim + n_cat)`` ordered continuous
then one-hot categorical. The representation of a real image (for MIG and the detectors) is Q's
mean of the continuous codes and its categorical probabilities: ``encode(x) -> (n, latent_dim + n_cat)``.

Q's posterior over a continuous code is a unit-variance Gaussian around Q's mean, as in Chen et
al.'s reference code (``fix_std``), so its part of L_I is a bounded squared error. A learned
variance lets Q shrink it until the continuous term outweighs the adversarial and categorical
ones (5.5 nats at lambda_mi = 1): the categorical code went unused and FID stayed 2-3x worse at the
same budget (bench/README.md, InfoGAN).

The generator is pluggable: the flat conv generator here, or the style-based multiscale one of
:mod:`disentune.models.info_stylegan`; both map ``(noise, codes)`` to image logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from disentune.models.components import ConvDecoder, ConvEncoder

N_CAT = 3
NOISE_DIM = 16
FEATURES = 256


class FlatGenerator(nn.Module):
    """DCGAN-style: ``(noise, codes)`` concatenated, then the shared conv decoder with batch
    normalisation -> logits."""

    def __init__(self, image_shape: tuple[int, int, int], code_dim: int, noise_dim: int) -> None:
        super().__init__()
        channels, resolution, _ = image_shape
        self.decoder = ConvDecoder(noise_dim + code_dim, channels, resolution, batch_norm=True)

    def forward(self, noise: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([noise, codes], dim=1))


class InfoDiscriminator(nn.Module):
    """Shared conv body (LeakyReLU) with two heads: D's real/fake logit and Q(c|x)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, n_cat: int) -> None:
        super().__init__()
        channels, resolution, _ = image_shape
        self.latent_dim, self.n_cat = latent_dim, n_cat
        self.body = nn.Sequential(ConvEncoder(channels, resolution, FEATURES, leaky=True), nn.LeakyReLU(0.2))
        self.d_head = nn.Linear(FEATURES, 1)
        self.q_head = nn.Linear(FEATURES, n_cat + latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(d_logit (n,), q_cat_logits (n, n_cat), q_mu (n, k), q_logvar (n, k))``; the
        log-variance is 0 (unit variance, see the module docstring)."""
        h = self.body(x)
        q_cat, q_mu = self.q_head(h).split([self.n_cat, self.latent_dim], dim=1)
        return self.d_head(h).squeeze(1), q_cat, q_mu, torch.zeros_like(q_mu)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints from before the unit variance also have log-variance rows after the means
        rows = self.n_cat + self.latent_dim
        for name in ("q_head.weight", "q_head.bias"):
            if prefix + name in state_dict and state_dict[prefix + name].shape[0] > rows:
                state_dict[prefix + name] = state_dict[prefix + name][:rows]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class InfoGAN(nn.Module):
    traversal_range = (-1.0, 1.0)

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, *, n_cat: int = N_CAT,
                 noise_dim: int = NOISE_DIM, generator: nn.Module | None = None) -> None:
        super().__init__()
        self.image_shape, self.latent_dim, self.n_cat, self.noise_dim = image_shape, latent_dim, n_cat, noise_dim
        self.representation_dim = latent_dim + n_cat
        self.generator = generator or FlatGenerator(image_shape, self.representation_dim, noise_dim)
        self.discriminator = InfoDiscriminator(image_shape, latent_dim, n_cat)

    def forward(self, kind: str, *args: torch.Tensor):
        """One entry point so data-parallel wrappers see every use: ``("generate", noise, codes)``
        gives image logits, ``("discriminate", images)`` the discriminator's four outputs."""
        if kind == "generate":
            return self.generator(*args)
        return self.discriminator(*args)

    def sample_codes(self, n: int, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``noise (n, noise_dim)``, categorical classes ``(n,)``, continuous codes ``(n, latent_dim)``."""
        device = next(self.parameters()).device
        noise = torch.randn(n, self.noise_dim, generator=generator, device=device)
        cat = torch.randint(0, self.n_cat, (n,), generator=generator, device=device)
        cont = torch.rand(n, self.latent_dim, generator=generator, device=device) * 2.0 - 1.0
        return noise, cat, cont

    def codes(self, cat: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        return torch.cat([cont, F.one_hot(cat, self.n_cat).to(cont.dtype)], dim=1)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _, q_cat, q_mu, _ = self.discriminator(x)
        return torch.cat([q_mu, q_cat.softmax(dim=1)], dim=1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images for codes ``(n, latent_dim + n_cat)`` with the noise at its mean (zeros)."""
        noise = torch.zeros(codes.shape[0], self.noise_dim, device=codes.device, dtype=codes.dtype)
        return torch.sigmoid(self.generator(noise, codes))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        noise, cat, cont = self.sample_codes(n, generator)
        return torch.sigmoid(self.generator(noise, self.codes(cat, cont)))
