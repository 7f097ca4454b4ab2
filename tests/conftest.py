"""Shared fixtures: a per-session cache for rendered data and the extractor; no usage stats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session", autouse=True)
def disentune_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered dSprites and trained extractors are shared by every test of the session.

    ``DISENTUNE_TEST_CACHE`` points it at a lasting folder to skip re-rendering between runs.
    """
    path = Path(os.environ.get("DISENTUNE_TEST_CACHE") or tmp_path_factory.mktemp("cache"))
    os.environ["DISENTUNE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def dsprites32(disentune_cache: Path):
    from disentune.data.dsprites import DSprites

    data = DSprites(resolution=32)
    data.render()
    return data
