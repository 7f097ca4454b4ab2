"""The narrow interface the training loop needs from its runner, and its Ray Train version.

The loop asks for its rank, world size and device, wraps its model for data parallelism, reads
the checkpoint it resumes from and reports metrics with a checkpoint directory. Keeping that
behind :class:`Session` keeps the loop plain PyTorch.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator, Protocol

import torch
from torch import nn


class Session(Protocol):
    rank: int
    world_size: int
    device: torch.device

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move to the device; wrap for data parallelism when there are several workers."""

    def resume_dir(self) -> contextlib.AbstractContextManager[Path | None]:
        """The directory of the checkpoint to resume from, or None for a fresh start."""

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        """Report one epoch's metrics (every rank calls it; rank 0 passes the checkpoint)."""

    def mean_over_workers(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over all ranks (identity for one worker)."""


@contextlib.contextmanager
def checkpoint_dir(checkpoint) -> Iterator[Path | None]:
    """A Ray ``Checkpoint`` (Train's or Tune's) as a local directory, or None for no checkpoint."""
    if checkpoint is None:
        yield None
    else:
        with checkpoint.as_directory() as directory:
            yield Path(directory)


class LocalSession:
    """:class:`Session` in this process without Ray: one worker; each checkpoint is copied to
    ``root/epoch<k>`` (when ``root`` is given) and every report is kept in ``reports``.
    For debugging a trial, benchmarks and tests of the loop."""

    def __init__(self, root: Path | None = None, resume: Path | None = None, device: str = "cpu") -> None:
        self.rank, self.world_size, self.device = 0, 1, torch.device(device)
        self.root, self.resume = root, resume
        self.reports: list[tuple[dict, Path | None]] = []

    def prepare(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    @contextlib.contextmanager
    def resume_dir(self) -> Iterator[Path | None]:
        yield self.resume

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        target = None
        if self.root is not None and checkpoint_dir is not None:
            target = self.root / f"epoch{metrics['epoch']}"
            shutil.copytree(checkpoint_dir, target)
        self.reports.append((metrics, target))

    def mean_over_workers(self, values: dict[str, float]) -> dict[str, float]:
        return values


class RayTrainSession:
    """:class:`Session` inside a Ray Train worker (``TorchTrainer``)."""

    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()

    def prepare(self, model: nn.Module) -> nn.Module:
        import ray.train.torch

        if self.world_size == 1:
            return model.to(self.device)
        # GAN steps use only part of the model per forward (generate / discriminate)
        return ray.train.torch.prepare_model(model, parallel_strategy_kwargs={"find_unused_parameters": True})

    def resume_dir(self) -> contextlib.AbstractContextManager[Path | None]:
        import ray.train

        return checkpoint_dir(ray.train.get_checkpoint())

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        import ray.train

        from disentune.checkpoints import guarded_persist

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        with guarded_persist(checkpoint_dir, self._destination() if checkpoint_dir else None):
            ray.train.report(metrics, checkpoint=checkpoint)

    @staticmethod
    def _destination() -> str | None:
        """Where Ray Train copies this run's checkpoints, when that is a local folder."""
        import pyarrow.fs
        import ray.train

        try:
            storage = ray.train.get_context().get_storage()
        except (AttributeError, RuntimeError):  # an older Ray without the public accessor
            return None
        local = storage.storage_filesystem is None or isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem)
        return storage.experiment_fs_path if local else None

    def mean_over_workers(self, values: dict[str, float]) -> dict[str, float]:
        if self.world_size == 1:
            return values
        import torch.distributed as dist

        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist())}
