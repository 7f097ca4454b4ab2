"""What every generator family provides to the platform.

A family registers a :class:`Variant` in :data:`disentune.registry.MODELS`: a builder for its
pure torch module and a builder for its training step. Modules expose ``encode(x)`` (the mean
representation, ``(n, C, R, R) -> (n, d)``) and ``sample(n, generator=...)`` (images in [0, 1],
``(n, C, R, R)``). A training step owns every optimiser of its family and returns named loss
terms as floats; losses themselves never step anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

import torch
from torch import nn


@dataclass(frozen=True, kw_only=True)
class Hyper:
    """The per-trial hyperparameters a family reads."""

    latent_dim: int
    lambda_mi: float
    lambda_tc: float
    lr: float
    dataset_size: int  # N of the minibatch-weighted-sampling estimators
    scale_tied_codes: bool = False  # info_stylegan: code groups enter only their own scales
    # annealed_vae (Burgess et al. 2018): the KL capacity C grows linearly from 0 to c_max nats
    # over anneal_steps optimisation steps, then stays (c_max >= 0, anneal_steps >= 1).
    c_max: float = 25.0
    anneal_steps: int = 100_000


class TrainStep(Protocol):
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """One optimisation step on a batch ``(n, C, R, R)``; returns named loss terms."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: Mapping) -> None: ...


@dataclass(frozen=True)
class Variant:
    """A registered generator family."""

    name: str
    build: Callable[[tuple[int, int, int], Hyper], nn.Module]
    make_step: Callable[[nn.Module, Hyper], TrainStep]
    # Closed ranges each weight may take for this family, checked when a search space loads.
    weight_bounds: Mapping[str, tuple[float, float]]
    # The loss term a fixed batch should drive down (adversarial totals need not fall).
    progress_term: str = "total"
    # Trained against a discriminator (no posterior, so no ELBO; a discriminator score instead).
    adversarial: bool = False
