"""The typed result of one trial, handed from the search to the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


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


# the error of a replicate that Tune returned no record of
NO_RECORD = ("no result: Tune kept no record of this trial replicate (its process died as it started); "
             "its parameters are the study's")


def one_per_replicate(outcomes: list[TrialOutcome], numbers: range, replicates: int,
                      params_of: Callable[[int], dict[str, Any]]) -> list[TrialOutcome]:
    """Exactly one outcome per (trial number, replicate), sorted.

    Tune's results can name a replicate twice (a trial process that died and was restarted
    leaves its failed attempt beside the finished one: the finished one is kept) and can miss
    one whose process died as it started (recorded as failed, with ``params_of(number)``, the
    parameters Optuna gave it): the tables then hold every trial once, none lost.
    """
    rank = {"ok": 2, "stopped": 1}
    best: dict[tuple[int, int], TrialOutcome] = {}
    for o in outcomes:
        key = (o.number, o.replicate)
        if key not in best or rank.get(o.status, 0) >= rank.get(best[key].status, 0):
            best[key] = o
    for number in numbers:
        for replicate in range(replicates):
            if (number, replicate) not in best:
                best[(number, replicate)] = TrialOutcome(number=number, trial_id="", params=params_of(number),
                                                         status="failed", error=NO_RECORD, replicate=replicate)
    return [best[key] for key in sorted(best)]
