"""Facial Action Unit rewards: AU F1 against gold AUs (Facial-R1) and AU-emotion consistency.

Two parsers, for two jobs:

- :func:`parse_aus` reads a gold AU list (the one parser of AU lists, which the data layer
  uses for the ``aus`` column too): ints, integral floats, ``"12"``, ``"AU12"``, ``"1,2,4"``,
  ``"AU1+AU2"`` and JSON list strings. AU 0 is refused (FACS codes start at AU 1; 0 is
  "neutral face", not an action), and so are codes of 100 or more (FACS has none).
- :func:`cited_aus` reads the AUs a completion's reasoning cites:
  - a code is "AU" (any case) directly followed by a number, optionally after one to three
    spaces, hyphens or underscores: "AU12", "AU 12", "AU-12", "au12", "AU06"; the letters may
    not follow another letter or digit ("BEAU12" cites nothing). Each number needs its own
    "AU": in "AU6+12" only AU 6 is cited. Intensity or side suffixes are allowed ("AU12L").
  - the FACS name of an AU, case-insensitive, words separated by spaces or hyphens:
    "lip corner puller", "Lip-Corner Puller" (names in ``rewards/data/action_units.yaml``).
  - AU numbers absent from the FACS table in that file (24 AUs: every AU of BP4D, DISFA and
    Aff-Wild2) are ignored, on both the cited and the gold side, so "AU99" never counts.

EMFACS prototypes (same file): happiness 6+12, sadness 1+4+15, surprise 1+2+5+26,
fear 1+2+4+5+7+20+26, anger 4+5+7+23, disgust 9+15+16, contempt 12+14. An answered emotion is
matched to a prototype by ``rewards.labels`` ("joy" -> happiness, "scared" -> fear).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

from rewards.base import Reward
from rewards.columns import bad_gold, gold_column, is_missing
from rewards.errors import DataError
from rewards.labels import Match, closest_label
from rewards.registry import register
from rewards.text import TemplateName, completion_text, template_span

MAX_AU = 99
# re.ASCII: Unicode case folding would let "ſ" match "s" and "K" (Kelvin) match "k".
_AU_CODE = re.compile(r"(?<![a-z0-9])au[\s_-]{0,3}([0-9]{1,3})(?![0-9])", re.IGNORECASE | re.ASCII)
_GOLD_ITEM = re.compile(r"(?:au[\s_-]?)?([0-9]{1,6})", re.IGNORECASE | re.ASCII)
_GOLD_SPACED_CODE = re.compile(r"\bau[\s_-]+(?=[0-9])", re.IGNORECASE | re.ASCII)
_GOLD_SEPARATORS = re.compile(r"[,+;\s]+")
_FACIAL_R1_CODE = re.compile(r"AU\d+")  # Facial-R1's extract_aus_from_text (grpo_jsonl.py:917-925)


@lru_cache(maxsize=1)
def au_table() -> dict:
    """The FACS table: ``{"au_names": {int: str}, "emfacs_prototypes": {str: [int]}}``."""
    text = resources.files("rewards").joinpath("data/action_units.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def parse_aus(value) -> list[int]:
    """The sorted, distinct AU numbers of a gold AU list; DataError saying what is wrong.

    >>> parse_aus([12, "6", "AU4", 6.0]), parse_aus("AU1+AU2"), parse_aus("1, 2,4"), parse_aus('["AU6", 12]')
    ([4, 6, 12], [1, 2], [1, 2, 4], [6, 12])
    >>> parse_aus("AU0")
    Traceback (most recent call last):
    ...
    rewards.errors.DataError: AU 0 is not a FACS Action Unit (codes start at AU 1; 0 means a neutral face)
    """
    if hasattr(value, "tolist") and not isinstance(value, (str, int, float)):
        value = value.tolist()  # numpy arrays from datasets' numpy formatting
    if isinstance(value, str):
        value = _string_items(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise DataError(f"{type(value).__name__} is not a list of Action Units")
    return sorted({_au_number(item) for item in value})


def _string_items(text: str) -> list:
    text = text.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:  # "['AU1', 'AU2']": a Python list written as text
            text = text.strip("[]").replace("'", " ").replace('"', " ")
        else:
            if isinstance(parsed, list):
                return parsed
    return [item for item in _GOLD_SEPARATORS.split(_GOLD_SPACED_CODE.sub("AU", text)) if item]


def _au_number(item) -> int:
    number = None
    if isinstance(item, int) and not isinstance(item, bool):
        number = item
    elif isinstance(item, float) and item.is_integer():
        number = int(item)
    elif isinstance(item, str) and _GOLD_ITEM.fullmatch(item.strip()):
        number = int(_GOLD_ITEM.fullmatch(item.strip()).group(1))
    if number is None or number < 0:
        raise DataError(
            f"{item!r:.40} is not an Action Unit; write numbers or codes such as 6, '12', 'AU12', 'AU1+AU2'"
        )
    if number == 0:
        raise DataError("AU 0 is not a FACS Action Unit (codes start at AU 1; 0 means a neutral face)")
    if number > MAX_AU:
        raise DataError(f"AU {number} is not a FACS code (FACS codes are below {MAX_AU + 1})")
    return number


def gold_aus(value, column: str, row: int, reward: str = "au_f1", facs_only: bool = True) -> set[int]:
    """The gold AU set of one row (restricted to the FACS table unless ``facs_only`` is false);
    DataError naming the reward, the column and the row.

    >>> sorted(gold_aus([12, "6", "AU4", 99.0], "aus", 0))
    [4, 6, 12]
    """
    try:
        numbers = parse_aus(value)
    except DataError as problem:
        raise bad_gold(reward, column, row, value, f"a list of Action Units such as [6, 12] ({problem})") from None
    return set(numbers) & au_table()["au_names"].keys() if facs_only else set(numbers)


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


def au_f1_score(cited: set, gold: set) -> float:
    """Facial-R1's R_AU: 0 for an empty gold, -1 for nothing cited, else 2*F1 - 1.

    F1 is computed as its ``au_reward`` does (beta 1): 2 P R / (P + R).

    >>> au_f1_score({6, 12}, {6, 12}), au_f1_score(set(), {6}), au_f1_score({4}, set()), au_f1_score({6}, {6, 12})
    (1.0, -1.0, 0.0, 0.33333333333333326)
    """
    if not gold:
        return 0.0
    if not cited:
        return -1.0
    hits = len(cited & gold)
    precision, recall = hits / len(cited), hits / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 2 * f1 - 1


@lru_cache(maxsize=65536)
def emfacs_emotion(label: str, match: str = "synonym") -> str | None:
    """The EMFACS emotion ``label`` names (``rewards.labels.closest_label``), or None.

    >>> emfacs_emotion(" Angry. "), emfacs_emotion("Joy!"), emfacs_emotion("calm"), emfacs_emotion("joy", "exact")
    ('anger', 'happiness', None, None)
    """
    names = list(au_table()["emfacs_prototypes"])
    index = closest_label(label, names, match)
    return None if index is None else names[index]


def consistency_score(cited: set[int], emotion: str, match: str = "synonym") -> float | None:
    """How well the cited AUs support ``emotion`` under the EMFACS prototypes, in [0, 1].

    support = |cited & proto(e)| / |proto(e)|; diagnostic = cited AUs that belong to any
    prototype; contradiction = share of the diagnostic AUs outside proto(e);
    score = support * (1 - contradiction). None when ``emotion`` names no prototype.

    >>> consistency_score({6, 12}, "happy"), consistency_score({6, 12, 4}, "happiness")
    (1.0, 0.6666666666666667)
    >>> consistency_score({9, 15}, "joy"), consistency_score({6}, "neutral")
    (0.0, None)
    """
    prototypes = au_table()["emfacs_prototypes"]
    name = emfacs_emotion(emotion, match)
    if name is None:
        return None
    prototype = set(prototypes[name])
    diagnostic = cited & set().union(*map(set, prototypes.values()))
    support = len(cited & prototype) / len(prototype)
    contradiction = len(diagnostic - prototype) / len(diagnostic) if diagnostic else 0.0
    return support * (1 - contradiction)


def _first_span_any_case(text: str, opening: str, closing: str) -> str | None:
    """Facial-R1's ``re.search(r"<think>(.*?)</think>", text, re.DOTALL | re.IGNORECASE)``, in linear time."""
    start = re.search(re.escape(opening), text, re.IGNORECASE)
    if start is None:
        return None
    end = re.compile(re.escape(closing), re.IGNORECASE).search(text, start.end())
    return None if end is None else text[start.end() : end.start()]


@register
class AuF1(Reward):
    """Facial-R1's R_AU, in [-1, 1]: AUs cited in the reasoning span vs the row's gold AUs.

    Gold empty -> 0; gold non-empty and nothing cited (or no closed reasoning span) -> -1;
    else 2*F1 - 1 of the two sets. The reasoning span is the template's (``think``;
    ``reasoning`` for kardia), or ``reasoning_span``. The gold is the row's ``aus_column``
    (:func:`parse_aus`); a row whose gold is None or NaN gets None ("does not apply").

    ``variant: facial_r1`` is Facial-R1's ``au_reward`` exactly (RobitsG/Facial-R1,
    ``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py:917-957``): every ``AU\\d+`` of the
    upper-cased first think span (its tags matched in any case), compared with the gold as
    strings ("AU012" is not "AU12"), any number counting. affect-rl's default (``affect_rl``)
    also reads "AU 12", "AU-12" and FACS names (``match_names``), and ignores numbers outside
    the FACS table on both sides, so "AU99" earns nothing.
    """

    name = "au_f1"
    summary = "Facial-R1 AU reward: 2*F1-1 of AUs cited in the reasoning vs the row's gold AUs"
    value_range = (-1.0, 1.0)
    source = "Facial-R1 (RobitsG/Facial-R1, grpo_jsonl.py au_reward)"

    def __init__(
        self,
        *,
        template: TemplateName = "r1",
        reasoning_span: str | None = None,
        aus_column: str = "aus",
        match_names: bool = True,
        variant: Literal["affect_rl", "facial_r1"] = "affect_rl",
    ):
        self.template, self.reasoning_span, self.aus_column = template, reasoning_span, aus_column
        self.match_names, self.variant = match_names, variant
        self.span = template_span(self, template, "reasoning", reasoning_span, "reasoning_span")

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        golds = gold_column(self.name, columns, self.aus_column, len(completions), "aus_column")
        scores = []
        for row, (completion, gold) in enumerate(zip(completions, golds)):
            if is_missing(gold):
                scores.append(None)
                continue
            text = completion_text(completion)
            if self.variant == "facial_r1":
                reasoning = _first_span_any_case(text, self.span.opening, self.span.closing) or ""
                cited = set(_FACIAL_R1_CODE.findall(reasoning.upper()))
                gold_set = {f"AU{number}" for number in gold_aus(gold, self.aus_column, row, facs_only=False)}
            else:
                cited = cited_aus(self.span.text(text) or "", self.match_names)
                gold_set = gold_aus(gold, self.aus_column, row)
            scores.append(au_f1_score(cited, gold_set))
        return scores


@register
class AuConsistency(Reward):
    """AU-emotion consistency, in [0, 1]; needs no gold AUs.

    For the answered emotion e (matched to an EMFACS name at the ``match`` level: "angry" ->
    anger, "joy" -> happiness) and the AU set C cited in the reasoning span, with proto(e) its
    EMFACS prototype: support = |C & proto(e)| / |proto(e)|; D = AUs of C found in any
    prototype; contradiction = |D - proto(e)| / |D| (0 when D is empty);
    score = support * (1 - contradiction). Returns None ("does not apply") when the answer
    span is missing or names no prototype (neutral, several labels, free text); the accuracy
    and format rewards judge those.
    """

    name = "au_consistency"
    summary = "do the AUs cited in the reasoning support the answered emotion (EMFACS)? None off-table"
    value_range = (0.0, 1.0)
    source = "EMFACS prototypes (Ekman & Friesen), as used by Facial-R1 and ExpLLM"

    def __init__(
        self,
        *,
        template: TemplateName = "r1",
        reasoning_span: str | None = None,
        answer_span: str | None = None,
        match_names: bool = True,
        match: Match = "synonym",
    ):
        self.template, self.reasoning_span, self.answer_span = template, reasoning_span, answer_span
        self.match_names, self.match = match_names, match
        self.reasoning = template_span(self, template, "reasoning", reasoning_span, "reasoning_span")
        self.answer = template_span(self, template, "answer", answer_span, "answer_span")
        if self.reasoning == self.answer:
            raise self.option_error("answer_span", f"a span other than the reasoning span {self.reasoning.name!r}",
                                    self.answer.name)  # fmt: skip

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        scores = []
        for completion in completions:
            text = completion_text(completion)
            answer = self.answer.text(text)
            cited = cited_aus(self.reasoning.text(text) or "", self.match_names)
            scores.append(None if answer is None else consistency_score(cited, answer, self.match))
        return scores
