"""Matching one emotion label against another: the one home of emotion inflections and synonyms.

Levels, each accepting what the previous one does:

- ``verbatim``: the two strings are equal after stripping surrounding whitespace (case and
  punctuation count): the published rule of R1-Omni and Facial-R1 (``student_answer == ground_truth``);
- ``exact``: equal after :func:`normalise_label` (case, spaces, punctuation at the ends);
- ``inflection``: or they share a base form of the MER ``format_mapping`` ("angry" / "anger");
- ``synonym``: or their MER ``raw_mapping`` synonym groups intersect ("scared" / "fear").

The mappings are zeroQiaoba/MERTools' (``data/emotion_wheel/PROVENANCE.md``). Used by the
accuracy and calibration rewards, by the AU-consistency reward to find an answer's EMFACS
emotion ("joy" -> happiness) and by the eval.

>>> labels_match("Angry.", "anger")
True
>>> labels_match("anger, fear", "anger")
False
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from rewards.wheel import base_forms, synonym_set

MATCHES = ("verbatim", "exact", "inflection", "synonym")
Match = Literal[MATCHES]

# An emotion label is a word or two; longer spans are sentences, not labels, and never match
# (except verbatim, the published rule, which compares any two strings).
_MAX_LABEL_CHARS = 200


def normalise_label(text: str) -> str:
    """Lower-case, collapse whitespace, strip punctuation at both ends ('"**Anger!**"' -> 'anger').

    >>> normalise_label("  **Lip  Corner** ")
    'lip corner'
    """
    words = " ".join(text.lower().split())
    start, end = 0, len(words)
    while start < end and not words[start].isalnum():
        start += 1
    while end > start and not words[end - 1].isalnum():
        end -= 1
    return words[start:end]


def labels_match(predicted: str, gold: str, match: str = "synonym") -> bool:
    """Whether two single labels agree at the ``match`` level (see the module docstring).

    >>> labels_match("scared", "fear", "inflection"), labels_match("scared", "fear")
    (False, True)
    >>> labels_match("Sad", "sad", "verbatim"), labels_match(" sad ", "sad", "verbatim")
    (False, True)
    """
    if match == "verbatim":
        return predicted.strip() == gold.strip() != ""
    predicted, gold = _label(predicted), _label(gold)
    if not predicted or not gold:
        return False
    if predicted == gold:
        return True
    if match == "exact":
        return False
    if not base_forms(predicted).isdisjoint(base_forms(gold)):
        return True
    return match == "synonym" and not synonym_set(predicted).isdisjoint(synonym_set(gold))


def _label(text: str) -> str:
    """The normalised label, or "" for a span too long to be a label (cached: labels repeat)."""
    return "" if len(text) > _MAX_LABEL_CHARS else _normalised(text)


@lru_cache(maxsize=65536)
def _normalised(text: str) -> str:
    return normalise_label(text)


def closest_label(answer: str, candidates: list[str], match: str = "synonym") -> int | None:
    """Index of the candidate ``answer`` names, or None (none, or several equally well).

    The levels are tried from ``verbatim`` up to ``match``; the first level at which exactly one
    candidate matches decides, so a closer candidate wins over a synonym.

    >>> closest_label("joy", ["happy", "joyful"]), closest_label("furious", ["angry", "mad"])
    (1, None)
    """
    for level in MATCHES[: MATCHES.index(match) + 1]:
        hits = [index for index, candidate in enumerate(candidates) if labels_match(answer, candidate, level)]
        if hits:
            return hits[0] if len(hits) == 1 else None
    return None
