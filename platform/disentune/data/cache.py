"""Where rendered datasets and trained feature networks are cached on each machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$DISENTUNE_CACHE`` or ``~/.cache/disentune``."""
    return Path(os.environ.get("DISENTUNE_CACHE", Path.home() / ".cache" / "disentune"))
