"""Read back the Optuna study a sweep kept in its journal file (optuna-dashboard opens it too)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend


def best_trial_numbers(journal: bytes) -> list[int]:
    """Numbers of the study's Pareto-optimal trials (Optuna's ``best_trials``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optuna.journal"
        path.write_bytes(journal)
        storage = JournalStorage(JournalFileBackend(str(path)))
        names = optuna.study.get_all_study_names(storage)
        if len(names) != 1:
            raise ValueError(f"expected one study in the journal, found {len(names)}")
        study = optuna.load_study(study_name=names[0], storage=storage)
        return sorted(t.number for t in study.best_trials)
