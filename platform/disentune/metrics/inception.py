"""Inception-v3 pool3 features for FID and KID, from a weights file the user points to.

Nothing is downloaded: :func:`load_inception` reads a local path or an ``s3://`` URI (through
:func:`disentune.reports.storage.filesystem`) holding an Inception-v3 state dict in torchvision's
layout (``torch.save(model.state_dict())``, or a dict with a ``"state_dict"`` entry), e.g. torchvision's
released ``inception_v3_google-0cc3c7bd.pth``. The file is loaded with ``weights_only=True``, so it
never runs code. The ``AuxLogits.*`` and ``fc.*`` entries are dropped (the auxiliary head is not
built, and the classifier is not used); every other tensor must match by name and shape.

The network is :class:`InceptionV3`, torchvision's ``Inception3`` (Szegedy et al. 2016) written
out here in eval-only form with the same module names, so the same files load. It is not imported
from torchvision because PyPI's torchvision wheels are CUDA builds whose compiled ops fail to load
beside the CPU build of torch this project installs (``import torchvision`` then raises), and the
features need none of torchvision's ops. Its outputs match torchvision's ``inception_v3(weights=None,
aux_logits=False)`` with ``fc = Identity`` on the same state dict (checked when this was written;
the tests pin the tensor names and shapes).

Features (the FID convention of Heusel et al. 2017) are the 2048-d output of the final average
pool, the input of ``fc``. Images ``(n, C, H, W)`` in ``[0, 1]`` are

1. repeated to 3 channels when grayscale (``C = 1``),
2. resized to 299 x 299 bilinearly (``align_corners=False``, no antialiasing),
3. mapped to ``[-1, 1]`` by ``2 x - 1``.

Step 3 is the input range of the released weights (ported from TensorFlow): torchvision's
``transform_input=True`` exists only to turn ImageNet-normalised input ``(x - mean) / std`` back
into ``(x - 0.5) / 0.5`` before the first convolution, so feeding ``(x - 0.5) / 0.5`` directly is
the same computation without the round trip. The weights of the original TensorFlow FID graph
(pytorch-fid's port) also load, as their tensors share these names, but its blocks pool slightly
differently, so values are close to, not equal to, the reference FID. The extractor is named
``inception-v3:<first 12 hex of the file's sha256>``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentune.errors import UserError
from disentune.storage import read_bytes

FEATURES = 2048
SIZE = 299
_DROPPED = ("AuxLogits.", "fc.")


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, c_in: int, c_out: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35 x 35 block: ``(n, c, 35, 35) -> (n, 224 + pool_features, 35, 35)``."""

    def __init__(self, c: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg3(x)),
        ], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: ``(n, c, 35, 35) -> (n, 480 + c, 17, 17)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17 x 17 block with factorised 7 x 7 convolutions: ``(n, 768, 17, 17)`` in and out."""

    def __init__(self, c: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        row, col = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
        self.branch1x1 = BasicConv2d(c, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(c, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(c, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            self.branch7x7dbl_5(self.branch7x7dbl_4(dbl)),
            self.branch_pool(_avg3(x)),
        ], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: ``(n, 768, 17, 17) -> (n, 1280, 8, 8)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(self.branch7x7x3_3(b7)),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionE(nn.Module):
    """8 x 8 block with expanded filter banks: ``(n, c, 8, 8) -> (n, 2048, 8, 8)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        row, col = {"kernel_size": (1, 3), "padding": (0, 1)}, {"kernel_size": (3, 1), "padding": (1, 0)}
        self.branch1x1 = BasicConv2d(c, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, **row)
        self.branch3x3_2b = BasicConv2d(384, 384, **col)
        self.branch3x3dbl_1 = BasicConv2d(c, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, **row)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, **col)
        self.branch_pool = BasicConv2d(c, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(_avg3(x)),
        ], 1)


class InceptionV3(nn.Module):
    """``(n, 3, 299, 299)`` in [-1, 1] -> pool3 features ``(n, 2048)``; torchvision's names."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c = InceptionA(192, 32), InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280), InceptionE(2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """``(n, 1 or 3, H, W)`` in [0, 1] -> ``(n, 3, 299, 299)`` in [-1, 1] (steps 1-3 above)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (n, 1 or 3, H, W), got {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (SIZE, SIZE):
        images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return images * 2.0 - 1.0


@dataclass
class InceptionExtractor:
    """Callable like :class:`disentune.metrics.factor_net.Extractor`: images -> ``(n, 2048)``."""

    net: nn.Module
    name: str

    @torch.no_grad()
    def __call__(self, images: np.ndarray | torch.Tensor, batch_size: int = 50) -> np.ndarray:
        self.net.eval()
        device = next(self.net.parameters()).device
        images = torch.as_tensor(images)
        out = [
            self.net(preprocess(images[i : i + batch_size].to(device).float())).cpu()
            for i in range(0, len(images), batch_size)
        ]
        if not out:
            return np.empty((0, FEATURES))
        return torch.cat(out).numpy().astype(np.float64)


def _state_dict(payload: object, uri: str) -> dict[str, torch.Tensor]:
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise UserError(f"{uri}: not an Inception-v3 state dict (expected a mapping of names to tensors)")
    return {k: v for k, v in payload.items() if not str(k).startswith(_DROPPED)}


def _mismatch(net: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """A short description of how ``state`` differs from ``net``'s tensors, or None if it fits."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} tensors of the wrong shape (e.g. {k}: {tuple(state[k].shape)}, "
            f"expected {tuple(expected[k].shape)})"
        )
    return "; ".join(problems) or None


def load_inception(uri: str, device: torch.device | str = "cpu") -> InceptionExtractor:
    """Load Inception-v3 weights from a local path or ``s3://`` URI; a one-line UserError if not.

    Missing or unreadable files, files that are not PyTorch weights and state dicts that do not
    fit torchvision's Inception-v3 layout each raise :class:`~disentune.errors.UserError` naming
    ``uri``.
    """
    data = read_bytes(uri)  # UserError for missing files and storage failures
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's, not a bug
        text = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"{uri}: not a readable PyTorch weights file ({text})") from None
    state = _state_dict(payload, uri)
    net = InceptionV3()
    problem = _mismatch(net, state)
    if problem:
        raise UserError(f"{uri}: not torchvision Inception-v3 weights: {problem}")
    net.load_state_dict(state)
    net.to(device).eval()
    return InceptionExtractor(net, f"inception-v3:{hashlib.sha256(data).hexdigest()[:12]}")
