"""The one exception type the CLI turns into a one-line message and exit status 2.

Anything a user can get wrong (a search space, a data file, an output location) raises
:class:`UserError` with a message that names the offending key or file, the value and what is
allowed. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; ``str(err)`` is a complete one-line explanation."""


class ConfigError(UserError):
    """A search space or experiment config that does not validate."""


class Interrupted(Exception):
    """A sweep stopped (Ctrl-C) before every trial finished: its state is saved for ``--resume``,
    and no result table was written, so no unfinished trial is ever recorded as failed."""
