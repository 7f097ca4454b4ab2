"""The typed result of one trial, handed from the search to the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialOutcome:
    """What one finished (or failed) trial left behind; ``number`` is its order in the study."""

    number: int
    trial_id: str
    params: dict[str, Any]
    status: str  # "ok" or "failed"
    error: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint_uri: str | None = None
    history: tuple[dict[str, Any], ...] = ()  # per-epoch metrics: epoch, loss_*, fid, mig, ...
