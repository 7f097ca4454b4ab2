"""Checkpoints: one ``state.pt`` per checkpoint directory, loaded with ``weights_only=True``.

A checkpoint holds the model and training-step state plus what is needed to rebuild the model
without the search space (variant, image shape, hyperparameters). Training writes them; every
later stage (the metric suite, the detectors, the report's traversals, :class:`disentune.Run`)
rebuilds a trial's model from its checkpoint URI through :func:`load_model_uri`, which is why
this module sits at the package's top level rather than under ``train/``.

A full disk never leaves half a checkpoint: :func:`save_checkpoint` serialises in memory and
renames into place, and :func:`guarded_persist` keeps Ray from starting a copy into the run's
storage that cannot finish; both fail with one line naming the path and the space needed.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from disentune.errors import UserError
from disentune.models.base import Hyper
from disentune.registry import MODELS

FILENAME = "state.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/state.pt`` atomically: serialised in memory first, then
    written beside the target and renamed. A full disk is one :class:`UserError` naming the path
    and the space needed (torch's own writer would report a ``RuntimeError`` from its zip writer
    and leave half a file), and leaves no ``*.part`` file."""
    from disentune.storage import write_local

    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(directory) / FILENAME
    write_local(path, buffer.getvalue())
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


# room Ray's own small files (results, error records, experiment state) keep after a checkpoint
PERSIST_HEADROOM = 1 << 20


@contextlib.contextmanager
def guarded_persist(checkpoint_dir: str | Path | None, destination: str | None) -> Iterator[None]:
    """Around handing a checkpoint to Ray, which copies it into ``destination`` (the trial's
    folder in the run's storage) with no temporary name, so a full disk would leave half a
    ``state.pt`` there and can leave Tune's own records truncated.

    On a local ``destination``: refuse at once with one line (:func:`disentune.storage.no_space`:
    the path, the space needed, the free space) when the disk cannot hold the checkpoint plus
    :data:`PERSIST_HEADROOM` (counted in the space needed); and if the copy still runs out of
    space (another writer took the room meanwhile), remove the checkpoint folders it created and
    raise the same line. Remote destinations (S3) pass through.
    """
    from disentune.storage import free_bytes, is_no_space, is_remote, no_space

    if checkpoint_dir is None or destination is None or is_remote(destination):
        yield
        return
    need = sum(f.stat().st_size for f in Path(checkpoint_dir).rglob("*") if f.is_file()) + PERSIST_HEADROOM
    free = free_bytes(destination)
    if free is not None and free < need:
        raise no_space(destination, need)
    root = Path(destination)
    before = set(os.listdir(root)) if root.is_dir() else set()
    try:
        yield
    except Exception as err:
        if not is_no_space(err):
            raise
        for name in set(os.listdir(root)) - before if root.is_dir() else ():
            if name.startswith("checkpoint_"):
                shutil.rmtree(root / name, ignore_errors=True)
        raise no_space(destination, need) from None
