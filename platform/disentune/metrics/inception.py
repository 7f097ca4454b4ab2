"""Inception-v3 pool3 features for FID, KID and precision/recall, from a weights file the user gives.

Nothing is downloaded: :func:`load_inception` reads a local path or an ``s3://`` URI (through
:func:`disentune.storage.read_bytes`) holding an Inception-v3 state dict (``torch.save(state_dict)``,
or a dict with a ``"state_dict"`` entry) of one of two kinds, which define different numbers:

- ``"pytorch-fid"``: the FID Inception weights (``pt_inception-2015-12-05-6726825d.pth``, the
  TensorFlow FID graph of Heusel et al. 2017 ported by pytorch-fid; 1008 classes in ``fc``). The
  network is pytorch-fid's ``fid_inception_v3()``: torchvision's module tree with its
  ``FIDInceptionA`` (Mixed_5b-5d), ``FIDInceptionC`` (Mixed_6b-6e), ``FIDInceptionE_1`` (Mixed_7b)
  and ``FIDInceptionE_2`` (Mixed_7c) blocks, which differ from torchvision's only in the pooling
  branch: TensorFlow's 3 x 3 average pool leaves the zero padding out of the mean
  (``count_include_pad=False``) and Mixed_7c max-pools (3 x 3, stride 1, padding 1) where
  torchvision average-pools. Its features equal ``pytorch_fid.inception.InceptionV3(
  resize_input=True, normalize_input=True)``'s on the same file (the tests run pytorch-fid).
- ``"torchvision"``: torchvision's ``inception_v3`` state dict (e.g. its released
  ``inception_v3_google-0cc3c7bd.pth``, 1000 classes), through torchvision's own blocks. Its outputs
  match torchvision's ``inception_v3(weights=None, aux_logits=False)`` with ``fc = Identity``.

The kind is read off the file (``fc.weight`` with 1008 rows: pytorch-fid's, any other ``fc``:
torchvision's) or given as ``kind=``; a file without ``fc`` must be given its kind, and a kind that
contradicts the file's ``fc`` is refused. The file is loaded with ``weights_only=True``, so it never
runs code. ``AuxLogits.*`` and ``fc.*`` are dropped (neither head is used), batch norm's
``num_batches_tracked`` counters may be absent (eval mode never reads them), and every other
tensor must match by name and shape.

The network is written out here in eval-only form with torchvision's module names rather than
imported from torchvision, because PyPI's torchvision wheels are CUDA builds whose compiled ops
fail to load beside the CPU build of torch this project installs (``import torchvision`` then
raises), and the features need none of torchvision's ops.

Features (the FID convention of Heusel et al. 2017) are the 2048-d output of the final average
pool, the input of ``fc``. Images ``(n, C, H, W)`` in ``[0, 1]`` are

1. repeated to 3 channels when grayscale (``C = 1``),
2. resized to 299 x 299 bilinearly (``align_corners=False``, no antialiasing; pytorch-fid's
   ``resize_input=True``),
3. mapped to ``[-1, 1]`` by ``2 x - 1`` (pytorch-fid's ``normalize_input=True``).

Step 3 is the input range of both kinds of weights (ported from TensorFlow): torchvision's
``transform_input=True`` exists only to turn ImageNet-normalised input ``(x - mean) / std`` back
into ``(x - 0.5) / 0.5`` before the first convolution, so feeding ``(x - 0.5) / 0.5`` directly is
the same computation without the round trip. The extractor is named after the definition its
numbers follow and the file: ``inception-v3-pytorch-fid:<sha12>`` or
``inception-v3-torchvision:<sha12>`` (the first 12 hex digits of the file's sha256).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentune.errors import UserError
from disentune.storage import read_bytes

FEATURES = 2048
SIZE = 299
KINDS = ("pytorch-fid", "torchvision")  # what load_inception builds; "auto" reads it off the file
FID_CLASSES = 1008  # rows of fc.weight in pytorch-fid's FID weights (torchvision's: 1000)
_DROPPED = ("AuxLogits.", "fc.")
_OPTIONAL = "num_batches_tracked"


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, c_in: int, c_out: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


# The 3 x 3, stride 1, padding 1 pool of a block's pool branch: torchvision's average counts the
# zero padding in the mean; TensorFlow's (the FID graph's) does not; its Mixed_7c max-pools.
Pool = Literal["avg", "avg-valid", "max"]


def _pool3(x: torch.Tensor, pool: Pool) -> torch.Tensor:
    if pool == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=pool == "avg")


class InceptionA(nn.Module):
    """35 x 35 block: ``(n, c, 35, 35) -> (n, 224 + pool_features, 35, 35)``."""

    def __init__(self, c: int, pool_features: int, pool: Pool = "avg") -> None:
        super().__init__()
        self.pool = pool
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
            self.branch_pool(_pool3(x, self.pool)),
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

    def __init__(self, c: int, channels_7x7: int, pool: Pool = "avg") -> None:
        super().__init__()
        self.pool = pool
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
            self.branch_pool(_pool3(x, self.pool)),
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

    def __init__(self, c: int, pool: Pool = "avg") -> None:
        super().__init__()
        self.pool = pool
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
            self.branch_pool(_pool3(x, self.pool)),
        ], 1)


class InceptionV3(nn.Module):
    """``(n, 3, 299, 299)`` in [-1, 1] -> pool3 features ``(n, 2048)``; torchvision's names.

    ``kind="torchvision"`` builds torchvision's ``Inception3`` blocks, ``kind="pytorch-fid"``
    pytorch-fid's ``fid_inception_v3()`` (the same tensors; see the module docstring).
    """

    def __init__(self, kind: str = "torchvision") -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        fid = kind == "pytorch-fid"
        pool: Pool = "avg-valid" if fid else "avg"
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c = InceptionA(192, 32, pool), InceptionA(256, 64, pool)
        self.Mixed_5d = InceptionA(288, 64, pool)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128, pool), InceptionC(768, 160, pool)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160, pool), InceptionC(768, 192, pool)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool)  # FIDInceptionE_1 when fid
        self.Mixed_7c = InceptionE(2048, "max" if fid else pool)  # FIDInceptionE_2 when fid

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
    """The tensors of a (possibly wrapped) state dict, heads included."""
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise UserError(f"{uri}: not an Inception-v3 state dict (expected a mapping of names to tensors)")
    return {str(k): v for k, v in payload.items()}


def weights_kind(state: Mapping[str, torch.Tensor]) -> str | None:
    """``"pytorch-fid"`` or ``"torchvision"`` read off the classifier ``fc.weight``; None without it.

    pytorch-fid's FID weights classify 1008 classes (the TensorFlow graph's), torchvision's 1000;
    any other classifier is taken for a torchvision network fine-tuned to other classes.
    """
    fc = state.get("fc.weight")
    if fc is None:
        return None
    return "pytorch-fid" if fc.ndim == 2 and fc.shape[0] == FID_CLASSES else "torchvision"


def _resolve_kind(kind: str, detected: str | None, uri: str) -> str:
    if kind not in ("auto", *KINDS):
        raise UserError(f"Inception-v3 weights kind: got {kind!r}, expected one of auto, {', '.join(KINDS)}")
    if kind == "auto":
        if detected is None:
            raise UserError(
                f"{uri}: no fc.weight to tell pytorch-fid's FID weights (1008 classes) from "
                f"torchvision's (1000); give the kind: {' or '.join(KINDS)}"
            )
        return detected
    if detected is not None and detected != kind:
        raise UserError(
            f"{uri}: the weights were given as {kind}, but their fc.weight (rows: "
            f"{'1008' if detected == 'pytorch-fid' else 'not 1008'}) says {detected}"
        )
    return kind


def _mismatch(net: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """A short description of how ``state`` differs from ``net``'s tensors, or None if it fits."""
    expected = net.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith(_OPTIONAL))
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


def load_inception(uri: str, device: torch.device | str = "cpu", kind: str = "auto") -> InceptionExtractor:
    """Load Inception-v3 weights from a local path or ``s3://`` URI; a one-line UserError if not.

    ``kind`` is ``"auto"`` (read off the file's ``fc``), ``"pytorch-fid"`` or ``"torchvision"``
    (see the module docstring). Missing or unreadable files, files that are not PyTorch weights,
    state dicts that do not fit Inception-v3's layout, and a kind that cannot be told or
    contradicts the file each raise :class:`~disentune.errors.UserError` naming ``uri``.
    """
    data = read_bytes(uri)  # UserError for missing files and storage failures
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's, not a bug
        text = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"{uri}: not a readable PyTorch weights file ({text})") from None
    state = _state_dict(payload, uri)
    kind = _resolve_kind(kind, weights_kind(state), uri)
    state = {k: v for k, v in state.items() if not k.startswith(_DROPPED)}
    net = InceptionV3(kind)
    problem = _mismatch(net, state)
    if problem:
        raise UserError(f"{uri}: not Inception-v3 weights ({kind}): {problem}")
    net.load_state_dict({**net.state_dict(), **state})  # absent num_batches_tracked keep their 0
    net.to(device).eval()
    return InceptionExtractor(net, f"inception-v3-{kind}:{hashlib.sha256(data).hexdigest()[:12]}")
