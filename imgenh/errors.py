"""The error every layer raises for bad usage, pipelines or batches (exit code 2)."""

from __future__ import annotations


class UsageError(Exception):
    """Something the user must fix before anything runs.

    Attributes
    ----------
    errors : list of str
        One line per problem, each naming the file, line, step or flag.
    warnings : list of str
        Things noticed on the way that explain the errors (e.g. a pattern that matched nothing).
    """

    def __init__(self, errors: list[str], warnings: list[str] | None = None):
        super().__init__("\n".join(errors))
        self.errors = errors
        self.warnings = warnings or []


class ConfigError(UsageError):
    """A pipeline file (or CLI override) is invalid; ``errors`` holds one line per problem."""
