"""Convolutional building blocks shared by every family; depth scales with the image size.

The encoder halves the resolution with 4x4 stride-2 convolutions down to 4x4 (3 layers at 32 px,
4 at 64 px), then two linear layers, as in the architecture used across disentanglement_lib;
the decoder mirrors it. Channel widths follow Burgess et al. (2018): 32, 32, 64, 64, ...
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _depth(resolution: int) -> int:
    depth = int(math.log2(resolution)) - 2
    if resolution != 2 ** (depth + 2) or depth < 1:
        raise ValueError(f"image size must be a power of two >= 8, got {resolution}")
    return depth


def _widths(depth: int) -> list[int]:
    return [32 * 2 ** (i // 2) for i in range(depth)]  # 32, 32, 64, 64, 128, ...


class ConvEncoder(nn.Module):
    """``(n, C, R, R) -> (n, out_features)``; ``leaky`` selects LeakyReLU(0.2) (discriminators)."""

    def __init__(self, channels: int, resolution: int, out_features: int, hidden: int = 256,
                 leaky: bool = False) -> None:
        super().__init__()
        widths = _widths(_depth(resolution))

        def act() -> nn.Module:
            return nn.LeakyReLU(0.2) if leaky else nn.ReLU()

        layers: list[nn.Module] = []
        for w_in, w_out in zip([channels] + widths[:-1], widths):
            layers += [nn.Conv2d(w_in, w_out, 4, stride=2, padding=1), act()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(widths[-1] * 16, hidden), act(), nn.Linear(hidden, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """``(n, in_features) -> (n, C, R, R)`` logits. ``batch_norm`` normalises every hidden layer,
    as DCGAN generators do: without it a GAN generator on dSprites collapses to one image (all
    black, the nearest thing to a 4 %-white sprite) within a few hundred steps."""

    def __init__(self, in_features: int, channels: int, resolution: int, hidden: int = 256,
                 batch_norm: bool = False) -> None:
        super().__init__()
        widths = _widths(_depth(resolution))[::-1]
        self.first = widths[0]

        def norm(kind: type[nn.Module], width: int) -> list[nn.Module]:
            return [kind(width)] if batch_norm else []

        self.head = nn.Sequential(
            nn.Linear(in_features, hidden), *norm(nn.BatchNorm1d, hidden), nn.ReLU(),
            nn.Linear(hidden, widths[0] * 16), *norm(nn.BatchNorm1d, widths[0] * 16), nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), *norm(nn.BatchNorm2d, w_out), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(widths[-1], channels, 4, stride=2, padding=1))  # the logits
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.head(z).view(-1, self.first, 4, 4))
