"""Task schemas: which columns a row of each task holds, and row validation + normalisation.

- emotion: ``text`` (str), ``emotions`` (list[str]); optional ``rationale``, ``context``.
- facial: ``aus`` (list[int]), ``emotion`` (str), ``description`` and/or ``image``; optional
  ``rationale``, ``confidence``.
- empathy: ``messages`` (list of {role, content}), ``emotion`` (str); optional ``persona``,
  ``reference``, ``rationale``, ``confidence``.

``confidence`` (0 < c < 1) is the SFT target of the ``calibrated`` template when a row has one.
Columns outside the schema (``id``, ...) pass through untouched.

Normalisation accepts what CSV files and hub datasets really hold: ``emotions`` as a list, a
JSON list string or ``"anxious, hopeful"``; ``aus`` as ints, ``"1,2,4"``, ``"AU1+AU2"`` or
integral floats (CSV cells); ``messages`` as a list, a JSON string or one plain string (one
user turn). Labels and emotion words are stripped and lower-cased; AUs sorted and unique.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from affect_rl.errors import ConfigError, DataError

TASKS = ("emotion", "facial", "empathy")
MESSAGE_ROLES = ("user", "assistant", "system")


class _Mismatch(Exception):
    """A value does not fit its field; carries what was expected."""


@dataclass(frozen=True)
class Field:
    """One schema column: its name, how to normalise it, and what users must give."""

    name: str
    kind: str
    required: bool
    expected: str


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Mismatch
    return value.strip()


def _label(value: Any) -> str:
    return _text(value).lower()


def _parse_json_list(value: str) -> list:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise _Mismatch from error
    if not isinstance(parsed, list):
        raise _Mismatch
    return parsed


def _emotion_words(value: Any) -> list[str]:
    if isinstance(value, str):
        value = _parse_json_list(value) if value.lstrip().startswith("[") else re.split(r"[,;]", value)
    if not isinstance(value, (list, tuple)):
        raise _Mismatch
    words = [_label(word) for word in value if not (isinstance(word, str) and not word.strip())]
    if not words:
        raise _Mismatch
    return list(dict.fromkeys(words))


_AU_TOKEN = re.compile(r"(?:AU)?\s*(\d+)", re.IGNORECASE)


def _au_code(item: Any) -> int:
    if isinstance(item, bool):
        raise _Mismatch
    if isinstance(item, float) and item.is_integer():
        item = int(item)
    if isinstance(item, str):
        match = _AU_TOKEN.fullmatch(item.strip())
        if not match:
            raise _Mismatch
        item = int(match.group(1))
    if not isinstance(item, int) or item <= 0:
        raise _Mismatch
    return item


def _action_units(value: Any) -> list[int]:
    if isinstance(value, str):
        text = value.strip()
        value = _parse_json_list(text) if text.startswith("[") else [t for t in re.split(r"[,+;\s]+", text) if t]
    elif isinstance(value, (int, float)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _Mismatch
    return sorted({_au_code(item) for item in value})


def _messages(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return [{"role": "user", "content": _text(value)}]
        value = _parse_json_list(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise _Mismatch
    turns = []
    for turn in value:
        if not isinstance(turn, dict) or turn.get("role") not in MESSAGE_ROLES:
            raise _Mismatch
        turns.append({"role": turn["role"], "content": _text(turn.get("content"))})
    return turns


def _confidence(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise _Mismatch from error
    if isinstance(value, bool) or not 0.0 < number < 1.0:
        raise _Mismatch
    return number


def _anything(value: Any) -> Any:
    return value


_NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "label": _label,
    "emotions": _emotion_words,
    "aus": _action_units,
    "messages": _messages,
    "confidence": _confidence,
    "any": _anything,
}

_TEXT = "a non-empty string"
_LABEL = 'one emotion label, e.g. "happiness"'

SCHEMAS: dict[str, tuple[Field, ...]] = {
    "emotion": (
        Field("text", "text", True, _TEXT + " (the situation)"),
        Field(
            "emotions", "emotions", True, 'a list of emotion words, e.g. ["anxious", "hopeful"] or "anxious, hopeful"'
        ),
        Field("rationale", "text", False, _TEXT),
        Field("context", "text", False, _TEXT),
    ),
    "facial": (
        Field("description", "text", False, _TEXT + " (a description of the face)"),
        Field("image", "any", False, "an image"),
        Field("aus", "aus", True, 'a list of Action Unit numbers, e.g. [6, 12], "6,12" or "AU6+AU12" ("[]" for none)'),
        Field("emotion", "label", True, _LABEL),
        Field("rationale", "text", False, _TEXT),
        Field("confidence", "confidence", False, "a number strictly between 0 and 1"),
    ),
    "empathy": (
        Field(
            "messages",
            "messages",
            True,
            'a non-empty list of {"role": "user"|"assistant"|"system", "content": str} turns (or one string)',
        ),
        Field("persona", "text", False, _TEXT),
        Field("emotion", "label", True, _LABEL),
        Field("reference", "text", False, _TEXT + " (a good reply)"),
        Field("rationale", "text", False, _TEXT),
        Field("confidence", "confidence", False, "a number strictly between 0 and 1"),
    ),
}

# Facial rows need at least one view of the face.
ONE_OF: dict[str, tuple[str, ...]] = {"facial": ("description", "image")}


def schema(task: str) -> tuple[Field, ...]:
    """The fields of ``task``; ConfigError naming the accepted tasks otherwise."""
    if task not in SCHEMAS:
        raise ConfigError(f"unknown task {task!r}; accepted tasks: {', '.join(TASKS)}")
    return SCHEMAS[task]


def required_columns(task: str) -> list[str]:
    """Columns every row of ``task`` must hold (before the one-of groups)."""
    return [field.name for field in schema(task) if field.required]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _normalise_row(row: dict, fields: Sequence[Field], task: str) -> dict:
    normalised = dict(row)
    for field in fields:
        value = row.get(field.name)
        if _is_missing(value):
            if field.required:
                raise DataError(f"field {field.name!r} is missing; expected {field.expected}")
            if field.name in row or field.kind != "any":
                normalised[field.name] = None
            continue
        try:
            normalised[field.name] = _NORMALISERS[field.kind](value)
        except _Mismatch:
            raise DataError(f"field {field.name!r}: expected {field.expected}; got {_shorten(value)}") from None
    group = ONE_OF.get(task, ())
    if group and all(normalised.get(name) is None for name in group):
        raise DataError(f"field {' or '.join(map(repr, group))} is missing; a {task} row needs at least one of them")
    return normalised


def validate_rows(rows: Iterable[dict], task: str, source: str, row_numbers: Sequence[int] | None = None) -> list[dict]:
    """Check every row against ``task``'s schema and return the normalised rows.

    Every returned row holds every text field of the schema (missing optional ones as None),
    so templates and ``datasets.Dataset.from_list`` see one set of columns.

    Args:
        rows: dicts, e.g. parsed JSONL lines.
        task: one of ``TASKS``.
        source: where the rows came from (a file path), named in errors.
        row_numbers: each row's number as in the file (JSONL line, CSV row counting the
            header); defaults to 1, 2, ...

    Raises:
        DataError: ``"<source>, row <n>, field '<name>': expected <what>; got <value>"``.

    >>> validate_rows([{"text": "I won!", "emotions": "Joy, pride"}], "emotion", "x.jsonl")
    [{'text': 'I won!', 'emotions': ['joy', 'pride'], 'rationale': None, 'context': None}]
    """
    fields = schema(task)
    normalised_rows = []
    for index, row in enumerate(rows):
        number = row_numbers[index] if row_numbers is not None else index + 1
        if not isinstance(row, dict):
            raise DataError(f"{source}, row {number}: expected an object with the {task} columns; got {_shorten(row)}")
        try:
            normalised_rows.append(_normalise_row(row, fields, task))
        except DataError as error:
            raise DataError(
                f"{source}, row {number}, {error}. Fix the row, or map another column onto it with column_mapping."
            ) from None
    columns = dict.fromkeys(key for row in normalised_rows for key in row)
    return [{column: row.get(column) for column in columns} for row in normalised_rows]
