"""The MER emotion-wheel data: loading, label parsing and precomputed word -> label tables.

Shared by ``rewards.emotion_wheel`` (the EW metric and reward) and ``rewards.labels``
(inflection and synonym matching). The data is ``data/emotion_wheel/wheel_mapping.json``
(zeroQiaoba/MERTools, MER2026 Track 2, CC BY-NC 4.0; see PROVENANCE.md beside it):

- ``format_mapping``: surface form ("angered") -> base forms ("anger", "angered");
- ``raw_mapping``: base form -> wheel words (synonym grouping);
- ``wheel_map_whole[wheelK][level]``: wheel word -> the wheel's label at that level.

Everything the hot path needs is computed once per (level, wheels) and cached: a table giving
every known word's label on each wheel as a bit, so a batch is scored with one dict look-up
per word and a few numpy ORs and popcounts over the whole batch.

>>> split_labels("['Happy', ' worried']")
['happy', 'worried']
>>> wheel_label("angered", wheel=1, level="level1")
'mad'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import repeat

import numpy as np

from rewards.errors import ConfigError

LEVELS = ("level1", "level2")
WHEELS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class WheelData:
    format_mapping: dict[str, list[str]]
    raw_mapping: dict[str, list[str]]
    wheel_map_whole: dict[str, dict[str, dict[str, str]]]


@lru_cache(maxsize=1)
def load_wheel_data() -> WheelData:
    """The three official mappings, read once from the package data."""
    path = resources.files("rewards") / "data" / "emotion_wheel" / "wheel_mapping.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    return WheelData(raw["format_mapping"], raw["raw_mapping"], raw["wheel_map_whole"])


def split_labels(value) -> list[str]:
    """Words of a label value, as the official ``string_to_list`` then ``lower().strip()``.

    A string loses one leading ``[`` and one trailing ``]`` and is split on ``'`` ``"`` ``,``;
    a list (or tuple, or numpy array) is taken as is; ``""``, None and NaN give ``[]``.
    The official code raises IndexError on the string ``"["``; this returns ``[]``.
    Anything else (a number, a list holding a non-string) raises TypeError.

    >>> split_labels("anxious, Hopeful")
    ['anxious', 'hopeful']
    >>> split_labels(['Sad ', 'lonely'])
    ['sad', 'lonely']
    >>> split_labels(None)
    []
    """
    if isinstance(value, str):
        return _split_string(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()  # numpy arrays, as the official code does
    if isinstance(value, (list, tuple)):
        try:
            return [item.lower().strip() for item in value]
        except (AttributeError, TypeError):
            raise TypeError("a label list must hold only strings") from None
    raise TypeError(f"expected a string or a list of strings, got {type(value).__name__}")


def _split_string(text: str) -> list[str]:
    # The official per-item strip, lower, strip equals strip then lower (no character
    # lower-cases to whitespace); lower() stays per item, as there, because Greek final sigma
    # depends on the context.
    return [word for word in map(str.lower, map(str.strip, raw_items(text))) if word]


def raw_items(text: str) -> list[str]:
    """Items of a label string before normalisation, empty items kept (they map to nothing).

    One leading ``[`` and one trailing ``]`` are dropped, then the text is split on ``'``
    ``"`` ``,`` (str.replace/split: the same items as the official ``re.split``, faster).
    ``split_labels`` is these items, stripped, lower-cased, without the empty ones.

    >>> raw_items("[Sad,, 'lonely']")
    ['Sad', '', ' ', 'lonely', '']
    """
    if text[:1] == "[":
        text = text[1:]
    if text[-1:] == "]":
        text = text[:-1]
    return text.replace("'", ",").replace('"', ",").split(",")


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise ConfigError(f"Unknown emotion-wheel level {level!r}. Accepted levels: {', '.join(LEVELS)}.")


@lru_cache(maxsize=None)
def label_table(wheel: int, level: str) -> dict[str, str]:
    """Every known word -> its label on ``wheel`` at ``level`` (words without one are absent).

    A word's label is the official backward mapping ("case3"): gather ``raw_mapping[f]`` for
    every base form f of the word, and take the wheel label of the first gathered word, in
    alphabetical order, that is on the wheel.
    """
    check_level(level)
    data = load_wheel_data()
    wheel_map = data.wheel_map_whole[f"wheel{wheel}"][level]
    table = {}
    for word, base_forms in data.format_mapping.items():
        candidates = sorted(raw for base in base_forms for raw in data.raw_mapping[base])
        label = next((wheel_map[c] for c in candidates if c in wheel_map), None)
        if label is not None:
            table[word] = label
    return table


def wheel_label(word: str, wheel: int, level: str = "level1") -> str | None:
    """The label of ``word`` (already lower-cased and stripped) on one wheel, or None."""
    return label_table(wheel, level).get(word)


@dataclass(frozen=True)
class WordTable:
    """Wheel labels of every known word as bit masks, one uint64 column per wheel.

    ``rows[index[word]]`` holds, for each selected wheel, the bit of the word's label (0 where
    it has none); row 0 is all zeros and stands for every unknown word (the official rule:
    out-of-vocabulary words are dropped). A set of words is the OR of its rows, and set sizes
    and intersections are popcounts.
    """

    index: dict[str, int]
    rows: np.ndarray
    family_counts: tuple[int, ...]

    def masks(self, word_lists) -> np.ndarray:
        """(n, wheels) uint64 masks, one row per list of (lower-cased, stripped) words."""
        word_lists = list(word_lists)
        counts = np.fromiter(map(len, word_lists), dtype=np.intp, count=len(word_lists))
        words = [word for word_list in word_lists for word in word_list]
        return self.segment_masks(words, counts)

    def segment_masks(self, words: list[str], counts: np.ndarray) -> np.ndarray:
        """Masks of consecutive segments of ``words``, ``counts[i]`` words in segment i."""
        get = self.index.get
        ids = np.fromiter(map(get, words, repeat(0)), dtype=np.intp, count=len(words))
        masks = np.zeros((len(counts), self.rows.shape[1]), dtype=np.uint64)
        filled = counts > 0
        if filled.any():
            starts = (np.cumsum(counts) - counts)[filled]
            masks[filled] = np.bitwise_or.reduceat(self.rows[ids], starts, axis=0)
        return masks


@lru_cache(maxsize=None)
def word_table(level: str, wheels: tuple[int, ...] = WHEELS) -> WordTable:
    """The cached ``WordTable`` for ``level`` and the given wheels (columns in that order)."""
    check_level(level)
    tables = [label_table(wheel, level) for wheel in wheels]
    words = sorted(set().union(*tables))
    index = {word: row for row, word in enumerate(words, start=1)}
    rows = np.zeros((len(words) + 1, len(wheels)), dtype=np.uint64)
    family_counts = []
    for column, table in enumerate(tables):
        families = sorted(set(table.values()))
        assert len(families) <= 64, "one uint64 column per wheel"
        bit_of = {family: np.uint64(1 << i) for i, family in enumerate(families)}
        for word, family in table.items():
            rows[index[word], column] = bit_of[family]
        family_counts.append(len(families))
    return WordTable(index, rows, tuple(family_counts))


# ---- inflections and synonyms, for single-label matching ----


@lru_cache(maxsize=65536)
def base_forms(word: str) -> frozenset[str]:
    """``format_mapping`` base forms of ``word`` (inflection level), empty if unknown.

    >>> sorted(base_forms("angry"))
    ['anger', 'angry']
    """
    return frozenset(load_wheel_data().format_mapping.get(word, ()))


@lru_cache(maxsize=65536)
def synonym_set(word: str) -> frozenset[str]:
    """Base forms of ``word`` plus the wheel words ``raw_mapping`` groups them with.

    >>> "fearful" in synonym_set("scared")
    True
    """
    raw_mapping = load_wheel_data().raw_mapping
    bases = base_forms(word)
    return bases.union(*(raw_mapping.get(base, ()) for base in bases))
