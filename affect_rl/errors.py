"""The one exception family for errors a user can cause.

It extends the rewards package's family (``rewards.errors``): :class:`AffectRLError` is a
``RewardError``, and ``ConfigError`` / ``DataError`` / ``EnvironmentProblem`` here subclass
their namesakes there, so code catching the rewards classes also catches these. The CLI catches
``RewardError``, prints its message without a traceback and exits 2. Every message says what is
wrong and how to fix it.
"""

from rewards import errors as _rewards_errors
from rewards.errors import JudgeError, RewardError

__all__ = ["AffectRLError", "ConfigError", "DataError", "EnvironmentProblem", "JudgeError", "RewardError",
           "TrainingDiverged"]


class AffectRLError(RewardError):
    """Base class: a problem the user can fix (config, data, environment, judge)."""


class ConfigError(AffectRLError, _rewards_errors.ConfigError):
    """A recipe or command-line option is unknown, mistyped or inconsistent."""


class DataError(AffectRLError, _rewards_errors.DataError):
    """A dataset file, row or column does not match its task schema."""


class EnvironmentProblem(AffectRLError, _rewards_errors.EnvironmentProblem):
    """Something missing from the machine: a package, a GPU, a model file."""


class TrainingDiverged(AffectRLError):
    """The loss or the reward became NaN or infinite; training stopped (``affect_rl.health``)."""
