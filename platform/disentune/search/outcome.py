"""The typed result of one trial, handed from the search to the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialOutcome:
    """What one finished (or failed) replicate of a trial left behind; ``number`` is the trial's
    order in the study, ``replicate`` the replicate's index (0 without replication), ``trial_id``
    the replicate's Tune trial id."""

    number: int
    trial_id: str
    params: dict[str, Any]
    status: str  # "ok" or "failed"
    error: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint_uri: str | None = None
    history: tuple[dict[str, Any], ...] = ()  # per-epoch metrics: epoch, loss_*, objectives, ...
    replicate: int = 0
