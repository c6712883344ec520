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

from rewards.base import Annotated, AtLeast, Reward
from rewards.registry import register
from rewards.text import TemplateName, completion_text, template_span


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


@register
class Length(Reward):
    """Sum of the overlong, short-reasoning and long-answer penalties, in [-3, 0].

    Options: ``max_length`` is L_max in tokens (words without ``completion_ids``); it follows
    the stage's ``max_completion_length`` unless set (null switches the overlong penalty off).
    ``buffer``: the penalty ramps from 0 at L_max - buffer down to -1 at L_max; null: a quarter
    of max_length (128 for 512; DAPO uses a fifth). ``min_think_words`` and ``max_answer_words``
    (null: off) count the words of the template's reasoning and answer spans
    (``reasoning_span`` / ``answer_span`` name other spans of the template).

    >>> reward = Length(max_length=10, buffer=4, min_think_words=4, max_answer_words=1)
    >>> reward(None, ["<think>I see a smile</think><answer>happy, calm</answer>"])
    [-1.0]
    >>> reward(None, ["ignored"], completion_ids=[list(range(8))])
    [-1.5]
    """

    name = "length"
    summary = "soft overlong penalty (tokens or words) + optional min reasoning words and max answer words"
    value_range = (-3.0, 0.0)
    source = "DAPO (soft overlong punishment); AffectGPT-R1 (length penalty)"

    def __init__(
        self,
        *,
        template: TemplateName = "r1",
        reasoning_span: str | None = None,
        answer_span: str | None = None,
        max_length: Annotated[int, AtLeast(1)] | None = 512,
        buffer: Annotated[int, AtLeast(0)] | None = None,
        min_think_words: Annotated[int, AtLeast(1)] | None = None,
        max_answer_words: Annotated[int, AtLeast(1)] | None = None,
    ):
        if buffer is None:
            buffer = (max_length or 0) // 4
        if max_length is not None and buffer > max_length:
            raise self.option_error("buffer", f"at most max_length ({max_length})", buffer)
        self.template, self.reasoning_span, self.answer_span = template, reasoning_span, answer_span
        self.max_length, self.buffer = max_length, buffer
        self.min_think_words, self.max_answer_words = min_think_words, max_answer_words
        self.reasoning = template_span(self, template, "reasoning", reasoning_span, "reasoning_span")
        self.answer = template_span(self, template, "answer", answer_span, "answer_span")

    def components(self, text: str, token_count: int | None) -> dict[str, float]:
        """The switched-on penalties of one completion, by name."""
        parts = {}
        if self.max_length is not None:
            length = token_count if token_count is not None else len(text.split())
            parts["overlong"] = overlong_penalty(length, self.max_length, self.buffer)
        if self.min_think_words is not None:
            parts["think"] = short_penalty(len((self.reasoning.text(text) or "").split()), self.min_think_words)
        if self.max_answer_words is not None:
            parts["answer"] = long_penalty(len((self.answer.text(text) or "").split()), self.max_answer_words)
        return parts

    def __call__(self, prompts, completions, completion_ids=None, log_metric=None, **columns) -> list[float]:
        token_counts = _token_counts(completion_ids, len(completions))
        rows = [self.components(completion_text(c), n) for c, n in zip(completions, token_counts)]
        if callable(log_metric) and rows:
            for name in rows[0]:
                log_metric(f"length/{name}", sum(parts[name] for parts in rows) / len(rows))
        return [float(sum(parts.values())) for parts in rows]


def _token_counts(completion_ids, count: int) -> list[int | None]:
    """Token count per completion from TRL's ``completion_ids``, or None each (count words)."""
    if isinstance(completion_ids, (list, tuple)) and len(completion_ids) == count:
        return [len(ids) if hasattr(ids, "__len__") else None for ids in completion_ids]
    return [None] * count
