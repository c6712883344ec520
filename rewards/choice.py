"""Multiple choice: option texts, the letters an answer or a gold names, and set scores.

Canonical rows (affect-rl's ``choice`` task): ``options`` is a list of option texts lettered
A, B, ... by position, and ``answer`` a list of the correct letters (``["A", "C"]``). Rewards
must also stand alone, so a dict ``{"A": text}``, options written ``"A. text"`` and a gold given
as one letter, a letter string (``"AC"``, ``"A, C"``) or an option's text are read too.

An answer names its options by letter, alone or listed (``"B"``, ``"(B)"``, ``"b."``, ``"A, C"``,
``"A,C"``, ``"A and C"``, ``"AC"``; run-together letters must be upper case), by a leading
letter before text (``"B. anger"``), or by option text, one or several separated by commas
(matched as :func:`rewards.labels.closest_label` matches labels).

>>> chosen_options("A, C", ["joy", "anger", "fear"]), chosen_options("Angry", ["joy", "anger"])
(frozenset({0, 2}), frozenset({1}))
"""

from __future__ import annotations

import re

from rewards.labels import closest_label, labels_match

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAX_ANSWER_CHARS = 1000
_RUN_OF_LETTERS = re.compile(r"[A-Z]{2,26}")
_SEPARATOR = re.compile(r"\s*(?:[,;/&+]|\band\b)\s*|\s+", re.IGNORECASE)
_LETTER_TOKEN = re.compile(r"[(\[]?([A-Za-z])[)\]]?[.:)]?")
# "B. anger", "(B) anger", "B: anger": a letter, its punctuation, then text.
_LEADING_LETTER = re.compile(r"[(\[]?([A-Za-z])(?:[.:)\]]|\))\s+\S")
_OPTION_PREFIX = re.compile(r"\s*[(\[]?([A-Za-z])[.:)\]]\s+")


def option_texts(options) -> list[str]:
    """Option texts in letter order, from a list ``["joy", ...]`` or a dict ``{"A": "joy", ...}``.

    A leading "A. " / "(A) " naming the option's own letter is dropped. Raises TypeError if malformed.

    >>> option_texts(["A. joy", "(B) anger"]), option_texts({"b": "anger", "A": "joy"})
    (['joy', 'anger'], ['joy', 'anger'])
    """
    if isinstance(options, dict):
        keys = sorted(options, key=lambda key: str(key).upper())
        if [str(key).upper() for key in keys] != list(LETTERS[: len(keys)]):
            raise TypeError("option keys must be the letters A, B, C, ...")
        options = [options[key] for key in keys]
    if not isinstance(options, (list, tuple)) or not 0 < len(options) <= len(LETTERS):
        raise TypeError("options must be a list of 1-26 strings or a dict letter -> text")
    if not all(isinstance(option, str) for option in options):
        raise TypeError("options must be strings")
    return [_drop_own_letter(option, LETTERS[i]) for i, option in enumerate(options)]


def _drop_own_letter(option: str, letter: str) -> str:
    prefix = _OPTION_PREFIX.match(option)
    return option[prefix.end() :] if prefix and prefix.group(1).upper() == letter else option


def letters_named(text: str) -> list[str] | None:
    """The letters a text lists, upper-cased, or None when it is not a list of letters.

    >>> letters_named("A, C"), letters_named("(b)"), letters_named("AC"), letters_named("ace"), letters_named("B. joy")
    (['A', 'C'], ['B'], ['A', 'C'], None, None)
    """
    text = text.strip()
    if _RUN_OF_LETTERS.fullmatch(text):
        return list(text)
    tokens = [token for token in _SEPARATOR.split(text) if token]
    found = [_LETTER_TOKEN.fullmatch(token) for token in tokens]
    if not tokens or not all(found):
        return None
    return [match.group(1).upper() for match in found]


def _indices(letters: list[str], n_options: int) -> frozenset[int] | None:
    indices = frozenset(LETTERS.index(letter) for letter in letters)
    return indices if indices and max(indices) < n_options else None


def chosen_options(answer: str, texts: list[str], match: str = "synonym") -> frozenset[int] | None:
    """Indices of the options an answer names, or None (no option, an unknown one, or a tie).

    >>> chosen_options("(b)", ["joy", "anger"]), chosen_options("E", ["joy", "anger"])
    (frozenset({1}), None)
    """
    if not answer.strip() or len(answer) > _MAX_ANSWER_CHARS:
        return None
    letters = letters_named(answer)
    if letters is not None:
        return _indices(letters, len(texts))
    leading = _LEADING_LETTER.match(answer.strip())
    if leading:
        return _indices([leading.group(1).upper()], len(texts))
    whole = closest_label(answer, texts, match)
    if whole is not None:
        return frozenset({whole})
    items = [item for item in re.split(r"[,;]", answer) if item.strip()]
    picked = [closest_label(item, texts, match) for item in items]
    return frozenset(picked) if len(items) > 1 and None not in picked else None


def gold_options(gold, texts: list[str]) -> frozenset[int] | None:
    """The correct options of a row: a list of letters (or option texts), a letter string
    (``"AC"``, ``"B, C"``, ``"B. anger"``) or an option's text (matched after normalisation);
    None if it names no option.

    >>> gold_options(["A", "C"], ["joy", "anger", "fear"]), gold_options("anger", ["joy", "anger"])
    (frozenset({0, 2}), frozenset({1}))
    """
    if isinstance(gold, (list, tuple)):
        picked = [gold_options(item, texts) for item in gold]
        if not picked or None in picked:
            return None
        return frozenset().union(*picked)
    if not isinstance(gold, str) or not gold.strip():
        return None
    letters = letters_named(gold)
    if letters is not None:
        return _indices(letters, len(texts))
    leading = _LEADING_LETTER.match(gold.strip())
    if leading:
        return _indices([leading.group(1).upper()], len(texts))
    hits = [index for index, text in enumerate(texts) if labels_match(gold, text, "exact")]
    return frozenset(hits) if len(hits) == 1 else None


def set_f1(chosen: frozenset[int] | None, gold: frozenset[int]) -> float:
    """F1 of the chosen and the correct option sets (0 when nothing was chosen).

    >>> set_f1(frozenset({0, 1}), frozenset({0, 2})), set_f1(None, frozenset({0}))
    (0.5, 0.0)
    """
    if not chosen:
        return 0.0
    return 2 * len(chosen & gold) / (len(chosen) + len(gold))


def humanomni_letter_f1(answer: str, gold: str) -> float:
    """HumanOmniV2's ``emer_ov_mc``: F1 of ``answer.split(",")`` and ``gold.split(",")``.

    Items are compared as written (no stripping, case-sensitive): ``"A, E"`` names ``" E"``,
    which matches no gold letter. Duplicates count in the denominators, as the lists' lengths
    do there (HumanMLLM/HumanOmniV2, ``src/open-r1-multimodal/src/open_r1/vlm_modules/qwenomni_module.py:279-290``).

    >>> humanomni_letter_f1("A,E", "A,E"), humanomni_letter_f1("A, E", "A,E")
    (1.0, 0.5)
    """
    reference, hypothesis = gold.split(","), answer.split(",")
    true_positive = len(set(reference) & set(hypothesis))
    precision, recall = true_positive / len(reference), true_positive / len(hypothesis)
    return 2 * (precision * recall) / (precision + recall) if precision + recall > 0 else 0.0
