"""Read back (and tidy) the Optuna study a sweep keeps in its journal file (optuna-dashboard
opens it too)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState


def _load(path: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(path)))
    names = optuna.study.get_all_study_names(storage)
    if len(names) != 1:
        raise ValueError(f"expected one study in the journal, found {len(names)}")
    return optuna.load_study(study_name=names[0], storage=storage)


def best_trial_values(journal: bytes) -> list[tuple[float, ...]]:
    """Objective values of the study's Pareto-optimal trials (Optuna's ``best_trials``).

    Values rather than Optuna's trial numbers: when a driver is killed between Optuna handing out
    a trial and Tune recording it, the resumed sweep never runs that trial, and every later Optuna
    number is one ahead of the sweep's own trial number."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optuna.journal"
        path.write_bytes(journal)
        return sorted(tuple(t.values) for t in _load(path).best_trials)


def fail_orphans(journal: Path) -> int:
    """Mark as failed the trials still RUNNING in a finished sweep's study (handed out by Optuna
    to a driver that was then killed, never run); returns how many there were."""
    study = _load(journal)
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in orphans:
        study.tell(trial.number, state=TrialState.FAIL)
    return len(orphans)


def trial_params(journal: Path, number: int) -> dict:
    """The parameters the study gave its trial ``number`` (empty when it has no such trial)."""
    trials = [t for t in _load(journal).get_trials(deepcopy=False) if t.number == number]
    return dict(trials[0].params) if trials else {}
