"""Gold columns: reading them from TRL's keyword arguments, and the errors about them.

TRL passes every dataset column to a reward as a keyword argument holding one value per
completion. A reward reads its gold values with :func:`gold_column`; a row whose gold is
missing (None, or NaN as pandas writes an empty CSV cell) does not apply to the reward, which
returns None for it (:func:`is_missing`); a gold value of the wrong shape raises
:func:`bad_gold`'s DataError, which names the reward, the column, the row and the fix.
"""

from __future__ import annotations

import math

from rewards.errors import DataError

# Keyword arguments TRL's GRPOTrainer passes beside the dataset columns.
TRL_KWARGS = frozenset({"prompts", "completions", "completion_ids", "trainer_state", "log_metric", "log_extra",
                        "environments"})  # fmt: skip


def gold_column(reward: str, columns: dict, name: str, n_rows: int, option: str) -> list:
    """The dataset column ``name`` that ``reward`` scores against; DataError if it is absent.

    ``option`` is the reward option that names the column (quoted in the error's fix).

    >>> gold_column("accuracy", {"label": ["joy"]}, "label", 1, "label_column")
    ['joy']
    """
    values = columns.get(name)
    if values is None:
        present = ", ".join(sorted(key for key in columns if key not in TRL_KWARGS)) or "none"
        raise DataError(
            f"Reward {reward!r} needs the dataset column {name!r}, which this batch lacks (columns present: "
            f"{present}). Add the column to the dataset, or set the reward's option {option} to the column that "
            f"holds these gold values."
        )
    values = list(values)
    if len(values) != n_rows:
        raise DataError(
            f"Reward {reward!r}: column {name!r} has {len(values)} values for {n_rows} completions; "
            f"pass one gold value per completion."
        )
    return values


def is_missing(value) -> bool:
    """Whether a gold value is absent: None or a float NaN (numpy's included).

    >>> is_missing(None), is_missing(float("nan")), is_missing(""), is_missing([])
    (True, True, False, False)
    """
    return value is None or (isinstance(value, float) and math.isnan(value))


def bad_gold(reward: str, column: str, row: int, value, expected: str) -> DataError:
    """The DataError for a malformed gold value (names the column, the row and the fix)."""
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return DataError(
        f"Reward {reward!r}: column {column!r}, row {row} of the batch holds {shown} "
        f"({type(value).__name__}); expected {expected}. Fix that row of the dataset."
    )
