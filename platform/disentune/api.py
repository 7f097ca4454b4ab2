"""``disentune.sweep``: one call from a search space to a finished :class:`~disentune.run.Run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from disentune.config import Experiment, experiment_from_dict, load_experiment
from disentune.errors import ConfigError
from disentune.run import Run


def as_experiment(space: str | Path | Mapping[str, Any] | Experiment) -> Experiment:
    """A search space as an :class:`Experiment`: a YAML file, a mapping shaped like one, or an
    Experiment already; each validated with one-line errors."""
    if isinstance(space, Experiment):
        return space
    if isinstance(space, Mapping):
        return experiment_from_dict(dict(space))
    if isinstance(space, (str, Path)):
        return load_experiment(space)
    raise ConfigError(f"search space: {type(space).__name__} is not allowed; expected a YAML path, a "
                      "mapping or an Experiment")


def sweep(space: str | Path | Mapping[str, Any] | Experiment, out: str | Path | None = None, *,
          address: str = "local", force: bool = False, resume: bool = False, samples: int | None = None,
          seed: int | None = None) -> Run:
    """Run the sweep of ``space`` into ``out`` (default ``reports/<name>``; a folder or ``s3://``)
    and return its :class:`Run`; its ``sweep_result`` holds the outcomes and timings.

    ``address``: ``"local"`` starts a private Ray instance (or uses the one this process already
    runs), ``"auto"`` joins the cluster this machine belongs to. ``force`` replaces the results at
    ``out``; ``resume`` continues an interrupted sweep there. ``samples`` and ``seed`` override
    ``search.num_samples`` and ``seed``.
    """
    from disentune.pipeline import run_sweep, with_overrides

    exp = with_overrides(as_experiment(space), samples=samples, seed=seed)
    result = run_sweep(exp, out=out if out is not None else Path("reports") / exp.name, address=address,
                       force=force, resume=resume)
    run = Run(result.run_uri)
    run.sweep_result = result
    return run
