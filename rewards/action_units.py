"""Facial Action Unit rewards: AU F1 against gold AUs (Facial-R1) and AU-emotion consistency.

Which AUs a text cites (``cited_aus``), the choices:

- a code is "AU" (any case) directly followed by a number, optionally after one to three spaces,
  hyphens or underscores: "AU12", "AU 12", "AU-12", "au12", "AU06"; the letters may not follow
  another letter or digit ("BEAU12" cites nothing). Each number needs its own "AU": in
  "AU6+12" only AU 6 is cited. Intensity or side suffixes are allowed ("AU12L", "AU4B").
- the FACS name of an AU, case-insensitive, words separated by spaces or hyphens:
  "lip corner puller", "Lip-Corner Puller" (names in ``rewards/data/action_units.yaml``).
- AU numbers absent from the FACS table in that file (24 AUs: every AU of BP4D, DISFA and
  Aff-Wild2) are ignored, on both the cited and the gold side, so "AU99" or "AU0" never count.

EMFACS prototypes (same file): happiness 6+12, sadness 1+4+15, surprise 1+2+5+26,
fear 1+2+4+5+7+20+26, anger 4+5+7+23, disgust 9+15+16, contempt 12+14.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import yaml

from rewards.errors import ConfigError, DataError
from rewards.format import check_tag
from rewards.registry import register
from rewards.text import completion_text, tag_span

# Spellings of the seven EMFACS emotions -> the table's name.
EMOTION_SYNONYMS = {
    "anger": "anger", "angry": "anger",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "joyful": "happiness",
    "sadness": "sadness", "sad": "sadness",
    "fear": "fear", "afraid": "fear", "fearful": "fear", "scared": "fear",
    "surprise": "surprise", "surprised": "surprise",
    "disgust": "disgust", "disgusted": "disgust",
    "contempt": "contempt", "contemptuous": "contempt",
}  # fmt: skip

# re.ASCII: Unicode case folding would let "ſ" match "s" and "K" (Kelvin) match "k".
_AU_CODE = re.compile(r"(?<![a-z0-9])au[\s_-]{0,3}([0-9]{1,3})(?![0-9])", re.IGNORECASE | re.ASCII)
_GOLD_CODE = re.compile(r"(?:au[\s_-]?)?([0-9]{1,3})", re.IGNORECASE)
# Keyword arguments TRL's GRPOTrainer adds beside the dataset columns.
_TRL_KWARGS = {"completion_ids", "trainer_state", "log_metric", "log_extra", "environments"}


@lru_cache(maxsize=1)
def au_table() -> dict:
    """The FACS table: ``{"au_names": {int: str}, "emfacs_prototypes": {str: [int]}}``."""
    text = resources.files("rewards").joinpath("data/action_units.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def _au_name_pattern() -> tuple[re.Pattern, dict[str, int]]:
    names = {name.lower(): number for number, name in au_table()["au_names"].items()}
    alternatives = sorted(names, key=len, reverse=True)
    body = "|".join(r"[\s-]+".join(map(re.escape, name.split())) for name in alternatives)
    return re.compile(rf"\b(?:{body})\b", re.IGNORECASE | re.ASCII), names


def cited_aus(text: str, match_names: bool = True) -> set[int]:
    """AU numbers cited in ``text`` by code and (if ``match_names``) by FACS name.

    >>> sorted(cited_aus("AU6 (cheek raiser), AU 12, au-4, the lip corner depressor, AU99, AU12345"))
    [4, 6, 12, 15]
    >>> cited_aus("Lip-Corner Puller", match_names=False)
    set()
    """
    known = au_table()["au_names"]
    cited = {int(found.group(1)) for found in _AU_CODE.finditer(text)} & known.keys()
    if match_names:
        pattern, numbers = _au_name_pattern()
        cited |= {numbers[re.sub(r"[\s-]+", " ", found.group(0).lower())] for found in pattern.finditer(text)}
    return cited


_AU_ITEM = re.compile(r"(?:AU)?\s*([0-9]+)", re.IGNORECASE)
# FACS numbers AUs from 1; AU 0 (the neutral face) and numbers beyond 999 are not Action Units.
_LARGEST_AU = 999


def parse_au_list(value) -> list[int]:
    """Sorted unique AU numbers from a list or a string; ValueError/TypeError when malformed.

    Accepts ints, integral floats, "12", "AU12", "1,2,4", "AU1+AU2", "au4 au1" and JSON list
    strings. AU 0, negative, fractional, boolean and numbers above 999 are refused.

    >>> parse_au_list("AU12+AU6"), parse_au_list([6.0, "AU12", 6]), parse_au_list("[15, 1]"), parse_au_list([])
    ([6, 12], [6, 12], [1, 15], [])
    """
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            value = json.loads(stripped)
        else:
            value = [token for token in re.split(r"[,+;\s]+", stripped) if token]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of AU numbers, got {type(value).__name__}")
    return sorted({_au_item(item) for item in value})


def _au_item(item) -> int:
    if isinstance(item, bool):
        raise TypeError("a boolean is not an AU number")
    if isinstance(item, float) and item.is_integer():
        item = int(item)
    if isinstance(item, str):
        found = _AU_ITEM.fullmatch(item.strip())
        if not found:
            raise ValueError(f"{item!r} is not an AU number")
        item = int(found.group(1))
    if not isinstance(item, int) or not 1 <= item <= _LARGEST_AU:
        raise ValueError(f"{item!r} is not an AU number between 1 and {_LARGEST_AU}")
    return item


def normalise_emotion(label: str) -> str:
    """Lower-case, trim spaces and punctuation, and map EMFACS spellings to the table's name.

    >>> normalise_emotion(" Angry. "), normalise_emotion("Joy!"), normalise_emotion("Calm")
    ('anger', 'happiness', 'calm')
    """
    cleaned = " ".join(label.lower().split()).strip(" .,;:!?'\"`*()[]{}")
    return EMOTION_SYNONYMS.get(cleaned, cleaned)


def au_f1_score(cited: set[int], gold: set[int]) -> float:
    """Facial-R1's R_AU: 0 for empty gold, -1 for nothing cited, else 2*F1 - 1.

    >>> au_f1_score({6, 12}, {6, 12}), au_f1_score(set(), {6}), au_f1_score({4}, set()), au_f1_score({6}, {6, 12})
    (1.0, -1.0, 0.0, 0.33333333333333326)
    """
    if not gold:
        return 0.0
    if not cited:
        return -1.0
    hits = len(cited & gold)
    f1 = 2 * hits / (len(cited) + len(gold))
    return 2 * f1 - 1


def consistency_score(cited: set[int], emotion: str) -> float | None:
    """How well the cited AUs support ``emotion`` under the EMFACS prototypes, in [0, 1].

    support = |cited & proto(e)| / |proto(e)|; diagnostic = cited AUs that belong to any
    prototype; contradiction = share of diagnostic AUs outside proto(e);
    score = support * (1 - contradiction). None when ``emotion`` has no prototype.

    >>> consistency_score({6, 12}, "happy"), consistency_score({6, 12, 4}, "happiness")
    (1.0, 0.6666666666666667)
    >>> consistency_score({9, 15}, "joy"), consistency_score({6}, "neutral")
    (0.0, None)
    """
    prototypes = au_table()["emfacs_prototypes"]
    prototype = prototypes.get(normalise_emotion(emotion))
    if prototype is None:
        return None
    prototype = set(prototype)
    diagnostic = cited & set().union(*map(set, prototypes.values()))
    support = len(cited & prototype) / len(prototype)
    contradiction = len(diagnostic - prototype) / len(diagnostic) if diagnostic else 0.0
    return support * (1 - contradiction)


def gold_aus(value, column: str, row: int) -> set[int]:
    """The gold AU set of one row, restricted to the FACS table; DataError for a malformed value.

    Items may be integers, integral floats or strings such as "12" or "AU12".

    >>> sorted(gold_aus([12, "6", "AU4", 99.0], "aus", 0))
    [4, 6, 12]
    """
    if not isinstance(value, (list, tuple)):
        raise DataError(
            f"Column {column!r} of row {row} is {value!r:.80} ({type(value).__name__}); expected a list of AU "
            f"numbers such as [6, 12]. Fix that row of the dataset."
        )
    numbers = set()
    for item in value:
        number = _au_number(item)
        if number is None:
            raise DataError(
                f"Column {column!r} of row {row} holds {item!r:.80}, not an AU number; expected a list of "
                f"non-negative integers such as [6, 12]. Fix that row of the dataset."
            )
        numbers.add(number)
    return numbers & au_table()["au_names"].keys()


def _au_number(item) -> int | None:
    """An AU number from a gold item (int, integral float, "12", "AU12"), or None."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item >= 0 else None
    if isinstance(item, float):
        return int(item) if item.is_integer() and 0 <= item < 1000 else None
    if isinstance(item, str):
        found = _GOLD_CODE.fullmatch(item.strip())
        return int(found.group(1)) if found else None
    return None


def gold_values(kwargs: dict, name: str, reward: str, count: int) -> list:
    """The dataset column ``name`` from TRL's keyword arguments; DataError naming it when absent."""
    values = kwargs.get(name)
    if isinstance(values, (list, tuple)) and len(values) == count:
        return list(values)
    present = sorted(key for key in kwargs if key not in _TRL_KWARGS)
    raise DataError(
        f"Reward {reward!r} needs the dataset column {name!r} with one value per row (from row 0), but "
        f"the batch has columns {present}. Add the column to the data, or set the reward's column option."
    )


@register(
    "au_f1",
    summary="Facial-R1 AU reward: 2*F1-1 of AUs cited in the reasoning vs the row's gold AUs",
    value_range=(-1.0, 1.0),
)
def au_f1_reward(*, gold_column: str = "aus", think_tag: str = "think", match_names: bool = True):
    """Facial-R1's R_AU, in [-1, 1]: AUs cited in the reasoning span vs the row's gold AUs.

    Gold empty -> 0; gold non-empty and nothing cited (or no closed reasoning span) -> -1;
    else 2*F1 - 1 of the two sets. Facial-R1 reads every ``AU\\d+`` of the upper-cased think
    text; here codes may also be written "AU 12" or "AU-12", numbers outside the FACS table
    are ignored on both sides, and FACS names count unless ``match_names=False``.

    Args:
        gold_column: dataset column with the gold AU list.
        think_tag: the span holding the reasoning (``reasoning`` for the kardia template).
        match_names: also count AUs cited by FACS name.

    Returns:
        ``fn(prompts, completions, **kwargs) -> list[float]``; a malformed or missing gold
        column raises DataError naming the column and the row.

    >>> fn = au_f1_reward()
    >>> fn(prompts=["p"], completions=["<think>AU6, lip corner puller</think><answer>joy</answer>"], aus=[[6, 12]])
    [1.0]
    """
    check_tag("au_f1", "think_tag", think_tag)

    def au_f1_fn(prompts, completions, **kwargs) -> list[float]:
        golds = gold_values(kwargs, gold_column, "au_f1", len(completions))
        scores = []
        for row, (completion, gold) in enumerate(zip(completions, golds)):
            reasoning = tag_span(completion_text(completion), think_tag) or ""
            scores.append(au_f1_score(cited_aus(reasoning, match_names), gold_aus(gold, gold_column, row)))
        return scores

    return au_f1_fn


@register(
    "au_consistency",
    summary="do the AUs cited in the reasoning support the answered emotion (EMFACS)? None off-table",
    value_range=(0.0, 1.0),
)
def au_consistency_reward(*, think_tag: str = "think", answer_tag: str = "answer", match_names: bool = True):
    """AU-emotion consistency, in [0, 1]; needs no gold AUs.

    For the answered emotion e (normalised: "angry" -> anger, "joy" -> happiness, ...) and
    the AU set C cited in the reasoning span, with proto(e) its EMFACS prototype:
    support = |C & proto(e)| / |proto(e)|; D = AUs of C found in any prototype;
    contradiction = |D - proto(e)| / |D| (0 when D is empty);
    score = support * (1 - contradiction).
    Returns None ("does not apply") when the answer span is missing or its label has no
    prototype (neutral, several labels, free text); the accuracy and format rewards judge those.

    Args:
        think_tag: the span holding the reasoning.
        answer_tag: the span holding the emotion label (``emotion`` for the kardia template).
        match_names: also count AUs cited by FACS name.

    Returns:
        ``fn(prompts, completions, **kwargs) -> list[float | None]``.

    >>> fn = au_consistency_reward()
    >>> fn(prompts=["p", "p"], completions=["<think>AU9, AU15</think><answer>Disgust</answer>",
    ...                                     "<think>AU9</think><answer>neutral</answer>"])
    [0.6666666666666666, None]
    """
    check_tag("au_consistency", "think_tag", think_tag)
    check_tag("au_consistency", "answer_tag", answer_tag)
    if think_tag == answer_tag:
        raise ConfigError(f"Reward 'au_consistency' needs different think_tag and answer_tag; both are {think_tag!r}.")

    def au_consistency_fn(prompts, completions, **kwargs) -> list[float | None]:
        scores = []
        for completion in completions:
            text = completion_text(completion)
            answer = tag_span(text, answer_tag)
            cited = cited_aus(tag_span(text, think_tag) or "", match_names)
            scores.append(None if answer is None else consistency_score(cited, answer))
        return scores

    return au_consistency_fn
