"""info-StyleGAN: MI maximisation through a style-based multiscale generator (the flagship).

The architecture of the seed thesis (Paul, Wang, Alajaji & Burlina, Neural Computation 2021):
InfoGAN's codes are not fed once at the input, where later layers can wash their effect out, but
enter the *style* of every layer at every resolution, as in StyleGAN2:

- a mapping network ``f: (z, c) -> w`` (4-layer MLP) turns noise and codes into a style vector;
- a learned constant 4x4 tensor starts the synthesis;
- each resolution from 4x4 up to the image size has modulated 3x3 convolutions (weights scaled
  per input channel by an affine map of ``w``, then demodulated to unit output variance, Karras
  et al. 2020) with per-pixel noise injection (learned per-channel strength), bias and LeakyReLU;
  resolutions double by upsampling; a modulated 1x1 convolution (no demodulation) gives logits.

Why: attribute control is what MI maximisation rewards (Q must recover c from G(z, c)), and
styles are the generator's control path at every scale, so each code gets a direct, scale-wide
handle on the image; the Q head of the shared InfoGAN discriminator enforces that the handle is
used. Lemma 1 of the paper ties this MI maximisation to disentanglement.

``scale_tied_codes``: split the continuous codes into contiguous groups, one per resolution
(coarse codes to coarse scales); the categorical code joins the coarsest group. A layer's style is
then computed from the noise and *its own group's* codes only, so a group can only act at its
scales (position and shape coarse, fine detail fine).

Shapes: ``noise (n, noise_dim)``, ``codes (n, k + n_cat)`` -> logits ``(n, C, R, R)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from disentune.models.infogan.module import N_CAT, NOISE_DIM, InfoGAN


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution: ``(x (n, in, H, W), w (n, w_dim)) -> (n, out, H, W)``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.affine = nn.Linear(w_dim, in_ch)
        nn.init.ones_(self.affine.bias)  # styles start at 1: an unmodulated convolution
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # Scaling the input channels by the style and the output channels by the demodulation
        # factor equals convolving with the per-sample modulated, demodulated weight (Karras et
        # al. 2020, eqs. 1-3), but runs as one ordinary batched convolution.
        style = self.affine(w)  # (n, in)
        weight = self.scale * self.weight  # (out, in, k, k)
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            # sigma_j = sqrt(sum_{i,k} (s_i w_ijk)^2) for each sample and output channel
            sigma = torch.sqrt(style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (n, out)
            out = out / sigma[:, :, None, None]
        return out


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, noise injection, bias, LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(1, out_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return F.leaky_relu(x + self.noise_strength * noise + self.bias, 0.2)


def _channels(resolution: int) -> int:
    return 64 if resolution <= 16 else 32


class StyleGenerator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, *, n_cat: int = N_CAT,
                 noise_dim: int = NOISE_DIM, w_dim: int = 128, scale_tied_codes: bool = False) -> None:
        super().__init__()
        channels, resolution, _ = image_shape
        self.scales = int(math.log2(resolution)) - 1  # 4x4, 8x8, ..., R x R
        if 2 ** (self.scales + 1) != resolution:
            raise ValueError(f"image size must be a power of two >= 8, got {resolution}")
        layers = [nn.Linear(noise_dim + latent_dim + n_cat, w_dim)]
        for _ in range(3):
            layers += [nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim)]
        self.mapping = nn.Sequential(*layers)
        self.const = nn.Parameter(torch.randn(1, _channels(4), 4, 4))
        self.blocks = nn.ModuleList()
        width = _channels(4)
        for s in range(self.scales):
            out = _channels(4 * 2**s)
            count = 1 if s == 0 else 2
            self.blocks.append(nn.ModuleList(StyleLayer(width if i == 0 else out, out, w_dim) for i in range(count)))
            width = out
        self.to_image = ModulatedConv2d(width, channels, 1, w_dim, demodulate=False)
        self.image_bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        # masks[s]: which codes reach scale s (all of them unless scale-tied)
        masks = torch.ones(self.scales, latent_dim + n_cat)
        if scale_tied_codes:
            masks.zero_()
            groups = torch.tensor_split(torch.arange(latent_dim), self.scales)
            for s, group in enumerate(groups):
                masks[s, group] = 1.0
            masks[0, latent_dim:] = 1.0  # the categorical code is coarse
        self.register_buffer("code_masks", masks)
        self.scale_tied_codes = scale_tied_codes

    def forward(self, noise: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        if self.scale_tied_codes:
            styles = [self.mapping(torch.cat([noise, codes * m], dim=1)) for m in self.code_masks]
        else:
            styles = [self.mapping(torch.cat([noise, codes], dim=1))] * self.scales
        x = self.const.expand(noise.shape[0], -1, -1, -1)
        for s, block in enumerate(self.blocks):
            if s > 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            for layer in block:
                x = layer(x, styles[s])
        return self.to_image(x, styles[-1]) + self.image_bias


def build_info_stylegan(image_shape: tuple[int, int, int], latent_dim: int, scale_tied_codes: bool) -> InfoGAN:
    generator = StyleGenerator(image_shape, latent_dim, scale_tied_codes=scale_tied_codes)
    return InfoGAN(image_shape, latent_dim, generator=generator)
