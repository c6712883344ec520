"""The rewards package's own error family, so ``rewards/`` stands on its own.

affect-rl's errors (``affect_rl.errors``) extend these: ``AffectRLError`` is a
:class:`RewardError`, and its ``ConfigError`` / ``DataError`` are these classes' subclasses, so
``except rewards.errors.ConfigError`` catches a configuration error from either package, and
the CLI catches :class:`RewardError` to print any of them as one line.
"""


class RewardError(Exception):
    """Base class: a problem the user can fix (a reward option, a gold value, the judge server)."""


class ConfigError(RewardError, ValueError):
    """A reward name, option or option value is unknown, mistyped or inconsistent."""


class DataError(RewardError, ValueError):
    """A gold column is missing or holds a value the reward cannot score against."""


class EnvironmentProblem(RewardError, RuntimeError):
    """Something missing from the machine that a reward needs (a package such as httpx)."""


class RangeError(RewardError, ValueError):
    """A reward returned something other than a finite number (or None) inside its declared range."""


class JudgeError(RewardError, RuntimeError):
    """An LLM judge server failed and the reward's failure policy is ``raise``."""
