"""What the detectors read from a trained model: feature spaces and per-image model scores.

Feature spaces (``(n, C, R, R)`` images in [0, 1] -> ``(n, f)`` features):

- ``latent``: the model's mean representation (``model.encode``);
- ``pixel``: the flattened image;
- ``activation:<layer>``: the flattened output of a named module, taken with a forward hook. A
  layer under the encoder or discriminator sees the image itself; one under the decoder or
  generator sees the decoding of the image's representation, ``decode(encode(x))``.

Model scores (``(n,)``, higher = more anomalous) need no fitting:

- ``reconstruction``: squared error ``||x - decode(encode(x))||^2`` (every model);
- ``neg_elbo``: ``-ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))`` with ``num_samples`` draws of
  ``z`` (VAE families, which have a posterior);
- ``discriminator``: ``-D(x)``, the negated real/fake logit (GAN families).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_IMAGE_SIDE = ("encoder", "discriminator")
_CODE_SIDE = ("decoder", "generator")


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: torch.device,
             batch: int = 500) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).float().to(device)
            out.append(fn(x).float().cpu())
    return torch.cat(out).numpy().astype(np.float64)


def activation_layers(model: nn.Module) -> list[str]:
    """Names of the modules whose activations can be scanned: every ReLU / LeakyReLU (and the
    convolutions and linear layers) under the encoder, decoder, generator or discriminator."""
    kinds = (nn.ReLU, nn.LeakyReLU, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    return [name for name, module in model.named_modules()
            if isinstance(module, kinds) and name.split(".")[0] in _IMAGE_SIDE + _CODE_SIDE]


def default_layer(model: nn.Module) -> str:
    """The last convolutional activation on the image side: the deepest spatial features."""
    names = [n for n in activation_layers(model) if n.split(".")[0] in _IMAGE_SIDE]
    modules = dict(model.named_modules())
    convs = [i for i, n in enumerate(names) if isinstance(modules[n], nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution on the image side")
    after = names[convs[-1] + 1 : convs[-1] + 2]
    return after[0] if after and not isinstance(modules[after[0]], nn.Linear) else names[convs[-1]]


def activations(model: nn.Module, images: np.ndarray, layer: str, device: torch.device) -> np.ndarray:
    """``(n, units)``: the flattened output of module ``layer`` for each image."""
    modules = dict(model.named_modules())
    if layer not in modules or layer not in activation_layers(model):
        raise ValueError(f"activation:{layer}: no such layer; choose from {', '.join(activation_layers(model))}")
    captured: list[torch.Tensor] = []
    hook = modules[layer].register_forward_hook(lambda _m, _i, out: captured.append(out.flatten(1)))
    image_side = layer.split(".")[0] in _IMAGE_SIDE

    def run(x: torch.Tensor) -> torch.Tensor:
        captured.clear()
        if image_side:
            model.encode(x)
        else:
            model.decode(model.encode(x))
        return captured[-1]

    try:
        return _batched(run, images, device)
    finally:
        hook.remove()


def features(model: nn.Module, images: np.ndarray, space: str, device: torch.device) -> np.ndarray:
    """Features ``(n, f)`` of ``images`` in feature space ``space`` (see the module docstring)."""
    model.eval()
    if space == "latent":
        return _batched(model.encode, images, device)
    if space == "pixel":
        return images.reshape(len(images), -1).astype(np.float64)
    if space.startswith("activation:"):
        return activations(model, images, space.split(":", 1)[1], device)
    raise ValueError(f"unknown feature space {space!r}; use latent, pixel or activation:<layer>")


def reconstruction_error(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    return _batched(lambda x: ((x - model.decode(model.encode(x))) ** 2).flatten(1).sum(1), images, device)


def neg_elbo(model: nn.Module, images: np.ndarray, device: torch.device, *, num_samples: int = 4,
             seed: int = 0) -> np.ndarray:
    """Per-image ``-ELBO`` in nats, averaged over ``num_samples`` posterior draws."""
    gen = torch.Generator(device=device).manual_seed(seed)

    def score(x: torch.Tensor) -> torch.Tensor:
        mu, logvar = model.posterior(x)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(1)
        nll = torch.zeros(len(x), device=x.device)
        for _ in range(num_samples):
            z = mu + torch.randn(mu.shape, generator=gen, device=mu.device) * torch.exp(0.5 * logvar)
            logits = model.decoder(z)
            nll += F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return nll / num_samples + kl

    return _batched(score, images, device)


def discriminator_score(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    return _batched(lambda x: -model.discriminator(x)[0], images, device)


def model_scores(model: nn.Module) -> dict[str, Callable[..., np.ndarray]]:
    """The model scores this model supports, by name."""
    scores: dict[str, Callable[..., np.ndarray]] = {"reconstruction": reconstruction_error}
    if hasattr(model, "posterior") and hasattr(model, "decoder"):
        scores["neg_elbo"] = neg_elbo
    if hasattr(model, "discriminator"):
        scores["discriminator"] = discriminator_score
    return scores
