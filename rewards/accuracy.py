"""Answer accuracy: single-label match with inflections and synonyms, or multiple choice.

Source: the accuracy rewards of R1-Omni, Facial-R1 (exact match of the ``<answer>`` label) and
HumanOmniV2 (multiple-choice exact match); synonym handling through the MER emotion-wheel
mappings (zeroQiaoba/MERTools, see ``data/emotion_wheel/PROVENANCE.md``), so "angry" matches
"anger" and "scared" matches "fear".

>>> labels_match("Angry.", "anger")
True
>>> labels_match("anger, fear", "anger")
False
"""

from __future__ import annotations

import re

from rewards.errors import ConfigError
from rewards.registry import register
from rewards.text import completion_text, tag_span
from rewards.wheel import bad_gold, base_forms, gold_column, synonym_set

MATCHES = ("exact", "inflection", "synonym")
MODES = ("auto", "label", "choice")

# An emotion label is a word or two; longer spans are sentences, not labels, and never match.
_MAX_LABEL_CHARS = 200
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# "B", "B.", "B)", "B:", "(B)", "[B]" alone or followed by text ("B. anger"); not "B anger".
_CHOICE_LETTER = re.compile(r"[(\[]?([A-Za-z])(?:[.:)\]](?=\s|$)|$)")
_OPTION_PREFIX = re.compile(r"\s*[(\[]?([A-Za-z])[.:)\]]\s+")


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
    """Whether two single labels agree after normalisation, at the ``match`` level.

    - exact: the normalised strings are equal;
    - inflection: or they share a ``format_mapping`` base form ("angry" / "anger");
    - synonym: or their ``raw_mapping`` synonym groups intersect ("scared" / "fear").

    Spans over 200 characters (sentences, lists) never match.

    >>> labels_match("scared", "fear", "inflection"), labels_match("scared", "fear")
    (False, True)
    """
    if len(predicted) > _MAX_LABEL_CHARS or len(gold) > _MAX_LABEL_CHARS:
        return False
    predicted, gold = normalise_label(predicted), normalise_label(gold)
    if not predicted or not gold:
        return False
    if predicted == gold:
        return True
    if match == "exact":
        return False
    if not base_forms(predicted).isdisjoint(base_forms(gold)):
        return True
    return match == "synonym" and not synonym_set(predicted).isdisjoint(synonym_set(gold))


def chosen_option(answer: str, options: list[str], match: str = "synonym") -> int | None:
    """Index of the option the answer picks, or None (no option, or several equally well).

    A leading letter ("B", "(B)", "B. anger") picks by position; otherwise the answer's text is
    matched against each option's at the levels exact, then inflection, then synonym (up to
    ``match``), and the first level with exactly one matching option decides.

    >>> chosen_option("(b)", ["joy", "anger"]), chosen_option("Angry", ["joy", "anger"])
    (1, 1)
    """
    if len(answer) > _MAX_LABEL_CHARS:
        return None
    letter = _CHOICE_LETTER.match(answer.strip())
    if letter:
        index = _LETTERS.find(letter.group(1).upper())
        return index if index < len(options) else None
    for level in MATCHES[: MATCHES.index(match) + 1]:
        hits = [i for i, option in enumerate(options) if labels_match(answer, option, level)]
        if hits:
            return hits[0] if len(hits) == 1 else None
    return None


# "A,C", "A, C", "A and C", "(A) (C)", "A/C": letters joined by separators; "ACD": a run of capitals.
_LETTER_LIST = re.compile(r"[(\[]?([A-Za-z])[)\].]?(?:\s*(?:,|;|/|&|\band\b|\s)\s*[(\[]?([A-Za-z])[)\].]?)+")
_LETTER_RUN = re.compile(r"[A-Z]{2,26}")


def chosen_options(answer: str, options: list[str], match: str = "synonym") -> list[str]:
    """The letters an answer picks, sorted: one option as ``chosen_option`` reads it, or several
    written "A, C", "A,C", "A and C", "(A) (C)" or "ACD", or option texts separated by commas.
    Empty when the answer names no option, or a letter beyond the options.

    >>> chosen_options("A, C", ["joy", "fear", "pride"]), chosen_options("AC", ["joy", "fear", "pride"])
    (['A', 'C'], ['A', 'C'])
    >>> chosen_options("joy, pride", ["joy", "fear", "pride"]), chosen_options("(b)", ["joy", "fear"])
    (['A', 'C'], ['B'])
    """
    text = answer.strip()
    if not text or len(text) > _MAX_LABEL_CHARS:
        return []
    single = chosen_option(text, options, match)
    if single is not None:
        return [_LETTERS[single]]
    letters = None
    if _LETTER_RUN.fullmatch(text):
        letters = list(text)
    elif _LETTER_LIST.fullmatch(text):
        letters = [letter.upper() for letter in re.findall(r"(?<![A-Za-z])[A-Za-z](?![A-Za-z])", text.replace("and", ","))]
    if letters is not None:
        indices = [_LETTERS.find(letter) for letter in letters]
        return sorted(set(letters)) if all(0 <= i < len(options) for i in indices) else []
    picked = [chosen_option(part, options, match) for part in re.split(r",|;|\band\b", text) if part.strip()]
    if len(picked) < 2 or any(index is None for index in picked):
        return []
    return sorted({_LETTERS[index] for index in picked})


def option_texts(options) -> list[str]:
    """Option texts in letter order, from a list ``["joy", ...]`` or a dict ``{"A": "joy", ...}``.

    A leading "A. " / "(A) " naming the option's own letter is dropped. Raises TypeError if malformed.
    """
    if isinstance(options, dict):
        keys = sorted(options, key=lambda key: str(key).upper())
        if [str(key).upper() for key in keys] != list(_LETTERS[: len(keys)]):
            raise TypeError("option keys must be the letters A, B, C, ...")
        options = [options[key] for key in keys]
    if not isinstance(options, (list, tuple)) or not 0 < len(options) <= len(_LETTERS):
        raise TypeError("options must be a list of 1-26 strings or a dict letter -> text")
    if not all(isinstance(option, str) for option in options):
        raise TypeError("options must be strings")
    return [_drop_own_letter(option, _LETTERS[i]) for i, option in enumerate(options)]


def _drop_own_letter(option: str, letter: str) -> str:
    prefix = _OPTION_PREFIX.match(option)
    return option[prefix.end() :] if prefix and prefix.group(1).upper() == letter else option


def _gold_index(gold, options: list[str]) -> int | None:
    """The gold option: a letter ("B", "(B)") or the option's text; None if it names none."""
    if not isinstance(gold, str):
        return None
    letter = _CHOICE_LETTER.match(gold.strip())
    if letter:
        index = _LETTERS.find(letter.group(1).upper())
        return index if index < len(options) else None
    hits = [i for i, option in enumerate(options) if normalise_label(option) == normalise_label(gold)]
    return hits[0] if len(hits) == 1 else None


def _check_options(mode, match, answer_tag) -> None:
    if mode not in MODES:
        raise ConfigError(f"accuracy: mode={mode!r}; accepted modes: {', '.join(MODES)}.")
    if match not in MATCHES:
        raise ConfigError(f"accuracy: match={match!r}; accepted levels: {', '.join(MATCHES)}.")
    if not isinstance(answer_tag, str) or not answer_tag:
        raise ConfigError(f"accuracy: answer_tag={answer_tag!r}; give a tag name such as 'answer' or 'emotion'.")


@register(
    "accuracy",
    summary="1 if the answer equals the gold label (inflections/synonyms allowed) or picks the gold option, else 0.",
    value_range=(0.0, 1.0),
)
def accuracy(
    *,
    mode: str = "auto",
    match: str = "synonym",
    answer_tag: str = "answer",
    label_column: str = "emotion",
    options_column: str = "options",
    choice_column: str = "answer",
):
    """Accuracy reward: 1.0 if the answer is right, else 0.0.

    The answer is the first ``<answer_tag>...</answer_tag>`` span (``emotion`` for kardia);
    no span scores 0.0. Two kinds of rows:

    - label: the answer must be one label equal to the row's ``label_column`` (facial and
      empathy ``emotion``) under ``labels_match`` at level ``match`` (exact / inflection /
      synonym). A list or a sentence does not match, so listing every label earns nothing.
    - choice: the row's ``options_column`` holds the options (a list, lettered A, B, ... by
      position, or a dict letter -> text) and ``choice_column`` the gold (a letter or the
      option's text); the answer may give the letter ("B", "(B)", "B. anger") or the text.

    ``mode="auto"`` scores a row as a choice when its ``options_column`` value is present and
    not None, else as a label. A row whose gold is None gets None ("does not apply").
    Range {0, 1} (or None). Never raises on completion text; a missing or malformed gold column
    raises DataError naming the column and the row.

    >>> reward = accuracy()
    >>> reward(None, ["<answer>Angry</answer>", "<answer>joy</answer>"], emotion=["anger", "sadness"])
    [1.0, 0.0]
    >>> reward(None, ["<answer>B</answer>", "<answer>fear</answer>"],
    ...        options=[["joy", "anger"], ["A. joy", "B. fear"]], answer=["B", "B"])
    [1.0, 1.0]
    """
    _check_options(mode, match, answer_tag)

    def label_score(answer: str | None, gold, row: int) -> float:
        if not isinstance(gold, str):
            raise bad_gold("accuracy", label_column, row, gold, "one emotion label (a string)")
        return float(answer is not None and labels_match(answer, gold, match))

    def choice_score(answer: str | None, options, gold, row: int) -> float:
        try:
            texts = option_texts(options)
        except TypeError as problem:
            raise bad_gold("accuracy", options_column, row, options, f"a list of option texts ({problem})") from None
        gold_index = _gold_index(gold, texts)
        if gold_index is None:
            expected = f"a letter A-{_LETTERS[len(texts) - 1]} or an option's text"
            raise bad_gold("accuracy", choice_column, row, gold, expected)
        return float(answer is not None and chosen_option(answer, texts, match) == gold_index)

    def reward(prompts, completions, **columns) -> list[float | None]:
        n_rows = len(completions)
        answers = [tag_span(completion_text(completion), answer_tag) for completion in completions]
        if mode == "choice" or (mode == "auto" and columns.get(options_column) is not None):
            options = gold_column("accuracy", columns, options_column, n_rows, "options_column")
            choices = gold_column("accuracy", columns, choice_column, n_rows, "choice_column")
        else:
            options = choices = [None] * n_rows
        labels = None
        scores = []
        for row, answer in enumerate(answers):
            if options[row] is not None:
                gold = choices[row]
                scores.append(None if gold is None else choice_score(answer, options[row], gold, row))
            elif mode == "choice":
                scores.append(None)
            else:
                labels = labels or gold_column("accuracy", columns, label_column, n_rows)
                gold = labels[row]
                scores.append(None if gold is None else label_score(answer, gold, row))
        return scores

    return reward
