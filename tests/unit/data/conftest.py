"""Fixtures of the data tests: a private conversion cache per test, and the file readers registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# importing a reader registers its dataset (the registry's builtin list names them too)
from disentune.data import (cars3d_mat, dsprites_npz, image_collection, mpi3d_npz,  # noqa: F401
                            shapes3d_h5, smallnorb_mat)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$DISENTUNE_CACHE`` for one test; returns its ``imported/`` folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("DISENTUNE_CACHE", str(root))
    return root / "imported"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)

