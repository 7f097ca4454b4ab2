"""Checkpoints: one ``state.pt`` per checkpoint directory, loaded with ``weights_only=True``.

A checkpoint holds the model and training-step state plus what is needed to rebuild the model
without the search space (variant, image shape, hyperparameters). Training writes them; every
later stage (the metric suite, the detectors, the report's traversals, :class:`disentune.Run`)
rebuilds a trial's model from its checkpoint URI through :func:`load_model_uri`, which is why
this module sits at the package's top level rather than under ``train/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from disentune.errors import UserError
from disentune.models.base import Hyper
from disentune.registry import MODELS

FILENAME = "state.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/state.pt`` atomically (write then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILENAME
    tmp = directory / (FILENAME + ".part")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_state(directory: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    path = Path(directory) / FILENAME
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint there") from None
    except Exception as err:  # a truncated or foreign file: never unpickle arbitrary objects
        raise UserError(f"{path}: not a readable disentune checkpoint ({type(err).__name__})") from None


def load_model(directory: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the trained model of a checkpoint; returns it (eval mode) and the checkpoint meta."""
    state = load_state(directory, device)
    meta = state["meta"]
    hyper = Hyper(**meta["hyper"])
    model = MODELS.get(meta["variant"]).build(tuple(meta["image_shape"]), hyper)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), meta


def load_model_uri(checkpoint_uri: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """:func:`load_model` for a checkpoint folder given as a URI (local path or ``s3://``)."""
    import tempfile

    from disentune.storage import join, read_bytes

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, FILENAME).write_bytes(read_bytes(join(checkpoint_uri, FILENAME)))
        return load_model(tmp, device)
