"""Column normalisers: turn what data files really hold into the canonical value of a column.

Each normaliser takes a raw cell and returns the canonical value, or raises :class:`Mismatch`
(the caller names the file, row and column). They accept what CSV files and hub datasets hold:

- ``emotions``: a list, a JSON list string or ``"anxious, hopeful"`` -> lower-cased unique words;
- ``aus``: ints, ``"1,2,4"``, ``"AU1+AU2"``, integral floats (CSV cells) -> sorted unique ints;
- ``messages``: a list of ``{role, content}``, a JSON string, or one plain string (one user turn);
- ``options``: a list of texts, ``["A. joy", "B. fear"]`` or ``{"A": "joy", "B": "fear"}`` -> texts;
- ``answer`` (choice): letters ``"B"``, ``"A,C"``, ``"ACD"``, ``["A", "C"]`` or option texts ->
  sorted unique letters, checked against the options;
- ``confidence``: a number strictly between 0 and 1.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rewards.action_units import parse_aus
from rewards.choice import LETTERS, gold_options, option_texts

MESSAGE_ROLES = ("user", "assistant", "system")
# Longer cells are almost always a broken file (a whole document in one cell), not a row.
MAX_TEXT_CHARS = 200_000


class Mismatch(Exception):
    """A value does not fit its column; the caller reports what was expected."""


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_CHARS:
        raise Mismatch
    return value.strip()


def label(value: Any) -> str:
    return text(value).lower()


def parse_json_list(value: str) -> list:
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError) as error:
        raise Mismatch from error
    if not isinstance(parsed, list):
        raise Mismatch
    return parsed


def emotion_words(value: Any) -> list[str]:
    if isinstance(value, str):
        value = parse_json_list(value) if value.lstrip().startswith("[") else re.split(r"[,;]", value)
    if not isinstance(value, (list, tuple)):
        raise Mismatch
    words = [label(word) for word in value if not (isinstance(word, str) and not word.strip())]
    if not words:
        raise Mismatch
    return list(dict.fromkeys(words))


def label_list(value: Any) -> list[str]:
    """A closed label set: like ``emotion_words`` (a list, JSON list or comma string)."""
    return emotion_words(value)


def action_units(value: Any) -> list[int]:
    try:
        return parse_aus(value)
    except (TypeError, ValueError, RecursionError) as error:
        raise Mismatch from error


def messages(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return [{"role": "user", "content": text(value)}]
        value = parse_json_list(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise Mismatch
    turns = []
    for turn in value:
        if not isinstance(turn, dict) or turn.get("role") not in MESSAGE_ROLES:
            raise Mismatch
        turns.append({"role": turn["role"], "content": text(turn.get("content"))})
    return turns


def confidence(value: Any) -> float:
    if isinstance(value, bool):
        raise Mismatch
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise Mismatch from error
    if not 0.0 < number < 1.0:  # NaN fails this too
        raise Mismatch
    return number


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise Mismatch


def options(value: Any) -> list[str]:
    """Option texts in letter order (``rewards.choice.option_texts``: a leading "A. " naming the
    option's own letter is dropped); at least two, each non-empty."""
    if isinstance(value, str):
        value = parse_json_list(value) if value.lstrip().startswith("[") else _parse_json_dict(value)
    try:
        texts = option_texts(value)
    except TypeError as error:
        raise Mismatch from error
    if len(texts) < 2:
        raise Mismatch
    return [text(option) for option in texts]


def _parse_json_dict(value: str) -> dict:
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError) as error:
        raise Mismatch from error
    if not isinstance(parsed, dict):
        raise Mismatch
    return parsed


def answer_letters(value: Any, option_texts: list[str]) -> list[str]:
    """The correct letters of a choice row, sorted and unique, each naming an existing option:
    letters or option texts as ``rewards.choice.gold_options`` reads them, or 0-based indices.

    >>> answer_letters("ACD", ["a", "b", "c", "d"]), answer_letters(" B,C ", ["a", "b", "c"])
    (['A', 'C', 'D'], ['B', 'C'])
    >>> answer_letters(["fear"], ["joy", "Fear"]), answer_letters(1, ["joy", "fear"])
    (['B'], ['B'])
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    indices: set[int] = set()
    for item in items:
        if isinstance(item, bool):
            raise Mismatch
        if isinstance(item, (int, float)):  # a 0-based index, as ClassLabel-style datasets store it
            if not (math.isfinite(item) and float(item).is_integer() and 0 <= int(item) < len(option_texts)):
                raise Mismatch
            indices.add(int(item))
            continue
        named = gold_options(item.strip() if isinstance(item, str) else item, option_texts)
        if named is None:
            raise Mismatch
        indices |= named
    if not indices:
        raise Mismatch
    return [LETTERS[index] for index in sorted(indices)]


def anything(value: Any) -> Any:
    return value
