"""The one exception family for errors a user can cause.

The CLI catches :class:`AffectRLError`, prints its message without a traceback and exits
non-zero. Every message says what is wrong and how to fix it.
"""


class AffectRLError(Exception):
    """Base class: a problem the user can fix (config, data, environment, judge)."""


class ConfigError(AffectRLError, ValueError):
    """A recipe or command-line option is unknown, mistyped or inconsistent."""


class DataError(AffectRLError, ValueError):
    """A dataset file, row or column does not match its task schema."""


class EnvironmentProblem(AffectRLError, RuntimeError):
    """Something missing from the machine: a package, a GPU, a model file."""


class JudgeError(AffectRLError, RuntimeError):
    """An LLM judge server failed and the reward's failure policy is ``raise``."""
