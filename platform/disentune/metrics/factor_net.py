"""The default FID feature extractor: a small network trained on the dataset's own factors.

Inception-v3 features describe natural photographs, not binary sprites, and its weights would
have to be downloaded; so by default FID uses the 128 hidden features of a convolutional
classifier trained to predict every ground-truth factor of the dataset (one softmax head per
factor). It is trained once per (dataset, resolution, seed), cached beside the rendered data and
named in every output with its hash, e.g. ``factornet-dsprites-r32:1a2b3c4d5e6f``, so its FID is
never mistaken for Inception FID.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentune.data.cache import cache_dir
from disentune.data.ground_truth import GroundTruthData
from disentune.models.components import ConvEncoder
from disentune.storage import write_local

VERSION = 1
FEATURES = 128
EXTRACTOR_SEED = 0  # fixed, so FIDs of different runs share one extractor and stay comparable


class FactorNet(nn.Module):
    """``(n, C, R, R) -> (n, 128)`` features and per-factor logits."""

    def __init__(self, image_shape: tuple[int, int, int], factor_sizes: list[int]) -> None:
        super().__init__()
        channels, resolution, _ = image_shape
        self.factor_sizes = list(factor_sizes)
        self.body = ConvEncoder(channels, resolution, FEATURES)
        self.heads = nn.Linear(FEATURES, sum(self.factor_sizes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.heads(self.features(x)).split(self.factor_sizes, dim=1))


@dataclass
class Extractor:
    """A loaded feature network with the name that goes next to every value it produces."""

    net: FactorNet
    name: str

    @torch.no_grad()
    def __call__(self, images: np.ndarray | torch.Tensor, batch_size: int = 500) -> np.ndarray:
        self.net.eval()
        device = next(self.net.parameters()).device
        images = torch.as_tensor(images)
        out = [
            self.net.features(images[i : i + batch_size].to(device).float()).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out).numpy().astype(np.float64)


def train_factor_net(
    data: GroundTruthData, *, seed: int, num_images: int = 20_000, epochs: int = 3,
    batch_size: int = 128, lr: float = 2e-3,
) -> tuple[FactorNet, dict]:
    """Train a :class:`FactorNet` on ``num_images`` uniformly drawn images; returns it and stats."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    classes = data.sample_factors(num_images, rng)
    images = torch.from_numpy(data.images(classes, rng))
    labels = torch.from_numpy(classes)
    net = FactorNet(data.image_shape, data.factor_sizes.tolist())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(num_images, generator=gen)
        for i in range(0, num_images - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size]
            logits = net(images[idx])
            loss = sum(F.cross_entropy(lg, labels[idx, k]) for k, lg in enumerate(logits))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        held = data.sample_factors(2000, rng)
        logits = net(torch.from_numpy(data.images(held, rng)))
        accuracy = [float((lg.argmax(1).numpy() == held[:, k]).mean()) for k, lg in enumerate(logits)]
    return net, {"seconds": time.perf_counter() - start, "accuracy": accuracy}


def _hash_state(state: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def factor_net_path(dataset: str, resolution: int, seed: int, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / f"factornet-{dataset}-r{resolution}-s{seed}-v{VERSION}.pt"


def ensure_factor_net(
    data: GroundTruthData, dataset: str, resolution: int, *, seed: int = EXTRACTOR_SEED,
    cache: Path | None = None,
) -> Path:
    """Path of the cached extractor for this dataset, training and saving it (atomically) if absent."""
    path = factor_net_path(dataset, resolution, seed, cache)
    if path.exists():
        return path
    net, stats = train_factor_net(data, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state": net.state_dict(),
        "image_shape": list(data.image_shape),
        "factor_sizes": data.factor_sizes.tolist(),
        "name": f"factornet-{dataset}-r{resolution}",
        "accuracy": stats["accuracy"],
    }
    buffer = io.BytesIO()  # serialised first: a full disk is one line naming the path (storage.py)
    torch.save(payload, buffer)
    write_local(path, buffer.getvalue())
    return path


def load_extractor(path: str | Path, device: torch.device | str = "cpu") -> Extractor:
    """Load a saved extractor (``weights_only``: a weights file never runs code)."""
    payload = torch.load(path, map_location=device, weights_only=True)
    net = FactorNet(tuple(payload["image_shape"]), payload["factor_sizes"])
    net.load_state_dict(payload["state"])
    net.to(device).eval()
    return Extractor(net, f"{payload['name']}:{_hash_state(payload['state'])}")
