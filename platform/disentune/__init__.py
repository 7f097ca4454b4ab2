"""disentune: multi-objective search and evaluation of disentangled generative models.

The curated Python API, shared by the command line and notebooks:

- :func:`sweep` runs a search space (a YAML path, a mapping or an :class:`Experiment`) and returns
  its :class:`Run`;
- :func:`open_run` opens a finished run (a local folder or ``s3://`` URI) as a :class:`Run`, whose
  tables are pandas DataFrames and whose ``model(trial)`` is the trained torch module;
- :func:`load_experiment` and :class:`Experiment`: the typed, validated config.
"""

__version__ = "0.1.0"

from disentune.api import sweep  # noqa: E402
from disentune.config import Experiment, load_experiment  # noqa: E402
from disentune.run import Run, open_run  # noqa: E402

__all__ = ["Experiment", "Run", "__version__", "load_experiment", "open_run", "sweep"]
