"""What a recipe's reward entry becomes: a reward that scores only the rows it applies to and
whose every value is checked against its declared range.

``applies_to: {COLUMN: [values...]}`` routes rows by a dataset column (HumanOmniV2 scores a
``problem_type: multiple choice`` row by exact match and an ``emer_ov_mc`` row by letter-set
F1): the reward is called on the rows whose column value is listed, and returns None ("does not
apply", which TRL accepts) for the others. Values logged by the reward through ``log_extra`` are
spread back over the whole batch.

Every value is then checked: None, or a finite number inside the reward's ``value_range``
(the instance's, which may depend on its options). Anything else raises RangeError naming the
reward, the row and the value: a reward outside its documented range is a bug that would
silently reweight the objective.

>>> from rewards.registry import build
>>> routed = Routed(build("format"), applies_to={"problem_type": ("free-form",)})
>>> routed(None, ["<think>a</think><answer>b</answer>"] * 2, problem_type=["free-form", "multiple choice"])
[1.0, None]
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

from rewards.columns import TRL_KWARGS
from rewards.errors import DataError, RangeError

# Keyword arguments that are not per-row lists even when their length equals the batch's.
_WHOLE_BATCH = frozenset({"trainer_state", "log_metric", "log_extra", "environments"})


class Routed:
    """A reward restricted to the rows ``applies_to`` selects, with its values range-checked.

    Keeps the reward's TRL name (``__name__``) and exposes its attributes (``.judge`` of a
    rubric reward). Picklable when the reward is.
    """

    def __init__(self, reward, applies_to: Mapping[str, tuple] | None = None, name: str | None = None):
        self.reward = reward
        self.applies_to = dict(applies_to or {})
        self.__name__ = name or getattr(reward, "__name__", type(reward).__name__)
        self.value_range = tuple(getattr(reward, "value_range", (-math.inf, math.inf)))

    def __getattr__(self, attribute: str):
        reward = self.__dict__.get("reward")
        if reward is None or attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(reward, attribute)

    def __repr__(self) -> str:
        routing = f", applies_to={self.applies_to!r}" if self.applies_to else ""
        return f"Routed({self.reward!r}{routing})"

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        rows, call = self._select(prompts, completions, columns)
        if not rows:
            return [None] * len(completions)
        return self._spread(rows, self.reward(**call), len(completions))

    def _select(self, prompts, completions, columns: dict) -> tuple[list[int], dict]:
        """The rows the reward applies to, and the keyword arguments restricted to them."""
        n_rows = len(completions)
        rows = list(range(n_rows))
        for column, accepted in self.applies_to.items():
            values = columns.get(column)
            if not isinstance(values, (list, tuple)) or len(values) != n_rows:
                present = ", ".join(sorted(key for key in columns if key not in TRL_KWARGS)) or "none"
                raise DataError(
                    f"Reward {self.__name__!r} applies_to the column {column!r}, which this batch lacks (columns "
                    f"present: {present}). Add the column to the dataset or change applies_to."
                )
            rows = [row for row in rows if values[row] in accepted]
        call = {"prompts": prompts, "completions": completions, **columns}
        if len(rows) < n_rows:
            call = {key: _subset(key, value, rows, n_rows) for key, value in call.items()}
            if callable(columns.get("log_extra")):
                call["log_extra"] = _SpreadLog(columns["log_extra"], rows, n_rows)
        return rows, call

    def _spread(self, rows: list[int], values, n_rows: int) -> list[float | None]:
        """The reward's values for ``rows``, checked, in a list over the whole batch."""
        if not isinstance(values, (list, tuple)) or len(values) != len(rows):
            count = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise RangeError(
                f"Reward {self.__name__!r} returned {count} values for {len(rows)} completions; "
                f"a reward returns one float (or None) per completion."
            )
        scores: list[float | None] = [None] * n_rows
        low, high = self.value_range
        for row, value in zip(rows, values):
            if value is None:
                continue
            number = _as_number(value)
            if number is None or not low - 1e-9 <= number <= high + 1e-9:
                raise RangeError(
                    f"Reward {self.__name__!r} returned {value!r} for row {row} of the batch, outside its declared "
                    f"range [{low:g}, {high:g}]; a reward returns None or a finite number in its range (fix the "
                    f"reward, or declare its value_range)."
                )
            scores[row] = number
        return scores


class AsyncRouted(Routed):
    """``Routed`` for a reward TRL awaits (an ``async def __call__``, such as the rubric judge)."""

    async def __call__(self, prompts, completions, **columns) -> list[float | None]:
        rows, call = self._select(prompts, completions, columns)
        if not rows:
            return [None] * len(completions)
        return self._spread(rows, await self.reward(**call), len(completions))


def _subset(key: str, value, rows: list[int], n_rows: int):
    if key in _WHOLE_BATCH or not isinstance(value, (list, tuple)) or len(value) != n_rows:
        return value
    return [value[row] for row in rows]


def _as_number(value) -> float | None:
    """``value`` as a finite float (numpy scalars included), or None if it is not one."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class _SpreadLog:
    """``log_extra`` for a reward called on some rows: its values placed back at those rows."""

    def __init__(self, log_extra, rows: list[int], n_rows: int):
        self.log_extra, self.rows, self.n_rows = log_extra, rows, n_rows

    def __call__(self, column: str, values: list) -> None:
        spread = [None] * self.n_rows
        for row, value in zip(self.rows, values):
            spread[row] = value
        self.log_extra(column, spread)


def route(reward, applies_to: Mapping[str, tuple] | None = None, name: str | None = None) -> Routed:
    """``reward`` wrapped for a recipe: ``AsyncRouted`` when TRL must await it, else ``Routed``."""
    call = getattr(type(reward), "__call__", None)
    wrapper = AsyncRouted if inspect.iscoroutinefunction(reward) or inspect.iscoroutinefunction(call) else Routed
    return wrapper(reward, applies_to, name)
