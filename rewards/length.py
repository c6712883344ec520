"""Length penalties: a soft overlong penalty, a minimum reasoning length, a cap on the answer.

One reward, ``length``, the sum of three penalties, each in [-1, 0] and each switched off by
setting its option to None (only the overlong penalty is on by default):

- overlong (DAPO's soft overlong punishment; AffectGPT-R1 penalises length too), with L the
  completion length in tokens when TRL passes ``completion_ids``, else in words:
  0 if L <= max_length - buffer; ((max_length - buffer) - L) / buffer up to L = max_length;
  -1 beyond (buffer 0: a hard step at max_length).
- short reasoning: -(1 - w / min_think_words) when the reasoning span has w < min_think_words
  words (-1 when the span is missing), else 0. Guards against an empty ``<think>``.
- long answer: -min(1, (w - max_answer_words) / max_answer_words) when the answer span has
  w > max_answer_words words, else 0. Guards against listing every emotion word to buy
  recall on the emotion wheel (out-of-vocabulary words are free there).

Range [-3, 0]. Each component is logged through TRL's ``log_metric`` as ``length/<name>``.
"""

from __future__ import annotations

from rewards.errors import ConfigError
from rewards.format import check_tag
from rewards.registry import register
from rewards.text import completion_text, tag_span


def overlong_penalty(length: int, max_length: int, buffer: int) -> float:
    """DAPO's soft overlong punishment, in [-1, 0].

    >>> overlong_penalty(300, 512, 128), overlong_penalty(448, 512, 128), overlong_penalty(600, 512, 128)
    (0.0, -0.5, -1.0)
    """
    start = max_length - buffer
    if length <= start:
        return 0.0
    if length > max_length:
        return -1.0
    return (start - length) / buffer


def short_penalty(words: int, minimum: int) -> float:
    """-(1 - words / minimum) below ``minimum`` words, else 0; in [-1, 0].

    >>> short_penalty(5, 20), short_penalty(25, 20)
    (-0.75, 0.0)
    """
    return -(1 - words / minimum) if words < minimum else 0.0


def long_penalty(words: int, maximum: int) -> float:
    """-min(1, (words - maximum) / maximum) above ``maximum`` words, else 0; in [-1, 0].

    >>> long_penalty(3, 3), long_penalty(4, 2), long_penalty(100, 3)
    (0.0, -1.0, -1.0)
    """
    return -min(1.0, (words - maximum) / maximum) if words > maximum else 0.0


def _check_positive(name: str, value, allow_none: bool = True, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        accepted = f"an integer >= {low}" + (" or null to switch it off" if allow_none else "")
        raise ConfigError(f"Option {name} of reward 'length' must be {accepted}; got {value!r}.")


@register(
    "length",
    summary="soft overlong penalty (tokens or words) + optional min reasoning words and max answer words",
    value_range=(-3.0, 0.0),
)
def length_reward(
    *,
    max_length: int | None = 512,
    buffer: int | None = None,
    min_think_words: int | None = None,
    max_answer_words: int | None = None,
    think_tag: str = "think",
    answer_tag: str = "answer",
):
    """Sum of the overlong, short-reasoning and long-answer penalties, in [-3, 0].

    Args:
        max_length: L_max in tokens (words without ``completion_ids``); set it to the
            recipe's ``max_completion_length``; null switches the overlong penalty off.
        buffer: the penalty ramps from 0 at L_max - buffer down to -1 at L_max; null: a
            quarter of max_length (128 for 512; DAPO uses a fifth).
        min_think_words: minimum words in the reasoning span; null: off.
        max_answer_words: maximum words in the answer span; null: off.
        think_tag: span holding the reasoning (``reasoning`` for the kardia template).
        answer_tag: span holding the answer (``emotion`` for the kardia template).

    Returns:
        ``fn(prompts, completions, completion_ids=None, **kwargs) -> list[float]``.

    >>> fn = length_reward(max_length=10, buffer=4, min_think_words=4, max_answer_words=1)
    >>> fn(prompts=["p"], completions=["<think>I see a smile</think><answer>happy, calm</answer>"])
    [-1.0]
    >>> fn(prompts=["p"], completions=["ignored"], completion_ids=[list(range(8))])
    [-1.5]
    """
    _check_positive("max_length", max_length)
    _check_positive("buffer", buffer, allow_zero=True)
    _check_positive("min_think_words", min_think_words)
    _check_positive("max_answer_words", max_answer_words)
    check_tag("length", "think_tag", think_tag)
    check_tag("length", "answer_tag", answer_tag)
    if buffer is None:
        buffer = (max_length or 0) // 4
    if max_length is not None and buffer > max_length:
        raise ConfigError(f"Option buffer of reward 'length' ({buffer}) must not exceed max_length ({max_length}).")

    def components(text: str, token_count: int | None) -> dict[str, float]:
        parts = {}
        if max_length is not None:
            length = token_count if token_count is not None else len(text.split())
            parts["overlong"] = overlong_penalty(length, max_length, buffer)
        if min_think_words is not None:
            parts["think"] = short_penalty(len((tag_span(text, think_tag) or "").split()), min_think_words)
        if max_answer_words is not None:
            parts["answer"] = long_penalty(len((tag_span(text, answer_tag) or "").split()), max_answer_words)
        return parts

    def length_fn(prompts, completions, completion_ids=None, log_metric=None, **kwargs) -> list[float]:
        token_counts = _token_counts(completion_ids, len(completions))
        rows = [components(completion_text(c), n) for c, n in zip(completions, token_counts)]
        if callable(log_metric) and rows:
            for name in rows[0]:
                log_metric(f"length/{name}", sum(parts[name] for parts in rows) / len(rows))
        return [float(sum(parts.values())) for parts in rows]

    return length_fn


def _token_counts(completion_ids, count: int) -> list[int | None]:
    """Token count per completion from TRL's ``completion_ids``, or None each (count words)."""
    if isinstance(completion_ids, (list, tuple)) and len(completion_ids) == count:
        return [len(ids) if hasattr(ids, "__len__") else None for ids in completion_ids]
    return [None] * count
